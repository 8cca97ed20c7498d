import { execFileSync } from 'node:child_process'
import { chown, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { isTrustedOwner, readDataFile } from '../../../updater/shared/data-file'
import { readJournal } from '../../../updater/shared/journal'
import { fileStatus } from '../../../updater/shared/status'
import { lockOwnerFile, readLockOwner } from '../../../updater/shared/update-activity'

describe('isTrustedOwner: root trusts only root, anyone else root and themselves', () => {
  test.each([
    [0, 0, true],
    [1000, 0, false],
    [0, 1000, true],
    [1000, 1000, true],
    [1001, 1000, false],
  ])('a file of uid %i read by uid %i: %s', (uid, self, trusted) => {
    expect(isTrustedOwner(uid, self)).toBe(trusted)
  })
})

describe('readDataFile', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'upkeep-data-file-'))
  })
  afterEach(() => rm(dir, { recursive: true, force: true }))

  test('reads a small regular file; undefined when there is none', async () => {
    await writeFile(path.join(dir, 'a.json'), '{"a":1}')
    expect(await readDataFile(path.join(dir, 'a.json'), { maxBytes: 100 })).toBe('{"a":1}')
    expect(await readDataFile(path.join(dir, 'none.json'), { maxBytes: 100 })).toBeUndefined()
  })

  test('refuses a symlink, a bigger file, and (trustedOnly) a file another user wrote', async () => {
    await writeFile(path.join(dir, 'a.json'), '{"a":1}')
    await symlink(path.join(dir, 'a.json'), path.join(dir, 'link.json'))
    await expect(readDataFile(path.join(dir, 'link.json'), { maxBytes: 100 })).rejects.toThrow('is a symbolic link')
    await expect(readDataFile(path.join(dir, 'a.json'), { maxBytes: 3 })).rejects.toThrow('is 7 bytes, more than 3')
    // The test runs as root (the systemd sandboxes need it): a file handed to another user is not root's record.
    expect(process.getuid?.()).toBe(0)
    await chown(path.join(dir, 'a.json'), 4242, 4242)
    await expect(readDataFile(path.join(dir, 'a.json'), { maxBytes: 100, trustedOnly: true })).rejects.toThrow('belongs to uid 4242, not to the updater')
    expect(await readDataFile(path.join(dir, 'a.json'), { maxBytes: 100 })).toBe('{"a":1}')
  })
})

describe('the status file, appended by the root updater', () => {
  test('an append never goes through a symlink or waits on a FIFO the server planted', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'upkeep-status-'))
    try {
      const file = path.join(dir, 'update-status.jsonl')
      const status = fileStatus(file)
      await status.begin('20261202T000000Z-0badf00d')
      const victim = path.join(dir, 'victim')
      await writeFile(victim, 'kept\n')
      await rm(file)
      await symlink(victim, file)
      await expect(status.emit({ type: 'log', level: 'info', message: 'x' })).rejects.toThrow(/ELOOP/)
      expect(await readFile(victim, 'utf8')).toBe('kept\n')
      await rm(file)
      execFileSync('mkfifo', [file])
      await expect(status.emit({ type: 'log', level: 'info', message: 'x' })).rejects.toThrow(/ENXIO/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('records root acts on: the journal and the lock owner', () => {
  test('root ignores one the server (another user) wrote or linked in, and reads its own', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'upkeep-records-'))
    try {
      const paths = { lock: path.join(dir, 'update.lock'), journal: path.join(dir, 'update-journal.json') }
      const journal = { schema: 1, updateId: '20261202T000000Z-0badf00d', steps: [], state: 'rolling_back', from: { release: '/somewhere/else' } }
      await writeFile(paths.journal, JSON.stringify(journal))
      await writeFile(lockOwnerFile(paths), JSON.stringify({ pid: 1, since: '2026-12-02T00:00:00.000Z' }))
      expect(await readJournal(paths.journal)).toMatchObject({ updateId: journal.updateId })
      expect(await readLockOwner(paths)).toMatchObject({ pid: 1 })
      for (const f of [paths.journal, lockOwnerFile(paths)]) await chown(f, 4242, 4242)
      expect(await readJournal(paths.journal)).toBeUndefined()
      expect(await readLockOwner(paths)).toBeUndefined()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
