import { chown, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { isTrustedOwner, readDataFile } from '../../../updater/shared/data-file'

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
