import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile, utimes } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { createExec } from '../../updater/adapters/exec'
import { cleanEnv } from '../../updater/adapters/clean-env'
import { backupName, createBackup, dataChangedSince, pruneBackups, restoreBackup, type DataRoot } from '../../updater/backup-archive'
import { UPKEEP_RUNTIME_EXCLUDES } from '../../updater/shared/apps/builtin'
import { repoRoot } from '../support/paths'
import { run } from '../support/run'

let dir: string
let dataDir: string
let backupDir: string
const exec = createExec({ env: cleanEnv({ uid: 0, gid: 0, name: 'root', home: '/root' }) })
/** Upkeep's own data dir: archived without a prefix, its bookkeeping left out. */
let roots: DataRoot[]

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'upkeep-backup-'))
  dataDir = path.join(dir, 'data')
  backupDir = path.join(dir, 'backups')
  roots = [{ abs: dataDir, prefix: '', exclude: UPKEEP_RUNTIME_EXCLUDES }]
  await mkdir(path.join(dataDir, 'uploads', 'deep'), { recursive: true })
  await writeFile(path.join(dataDir, 'settings.json'), '{"theme":"dark"}\n')
  await writeFile(path.join(dataDir, 'uploads', 'deep', 'photo.bin'), randomBytes(9 << 20))
  await writeFile(path.join(dataDir, 'uploads', 'notes.txt'), 'lorem ipsum '.repeat(100_000))
  // The updater's own files are not the app's data.
  await writeFile(path.join(dataDir, 'update-journal.json'), '{}')
  await mkdir(path.join(dataDir, 'logs'))
  await writeFile(path.join(dataDir, 'logs', 'server.log'), 'log\n')
})
afterEach(() => rm(dir, { recursive: true, force: true }))

const backup = (now = new Date('2026-11-23T10:00:00Z')) => createBackup({ app: 'upkeep', roots, backupDir, fromVersion: '1.0.0', updateId: 'u1', now, exec })

describe('createBackup', () => {
  test('a 0600 .tar.gz that plain tar restores, with a sha256 file and a manifest', async () => {
    const r = await backup()
    expect(path.basename(r.path)).toBe('upkeep-1.0.0-20261123T100000Z.tar.gz')
    for (const f of [r.path, `${r.path}.sha256`, r.manifestPath]) expect((await stat(f)).mode & 0o777).toBe(0o600)
    expect(execFileSync('sha256sum', ['-c', `${path.basename(r.path)}.sha256`], { cwd: backupDir, encoding: 'utf8' })).toBe(`${path.basename(r.path)}: OK\n`)
    const out = path.join(dir, 'restored')
    await mkdir(out)
    execFileSync('tar', ['xzf', r.path, '-C', out])
    // Buffer.equals: a deep toEqual over 9 MB byte by byte takes most of a minute.
    expect((await readFile(path.join(out, 'uploads', 'deep', 'photo.bin'))).equals(await readFile(path.join(dataDir, 'uploads', 'deep', 'photo.bin')))).toBe(true)
    expect(await readFile(path.join(out, 'settings.json'), 'utf8')).toBe('{"theme":"dark"}\n')
    expect((await readdir(out)).sort()).toEqual(['settings.json', 'uploads'])
    expect(r.manifest.files.map((f) => f.path).sort()).toEqual(['settings.json', 'uploads/deep/photo.bin', 'uploads/notes.txt'])
    // Several gzip members (compressed in parallel), still one valid stream for gzip.
    execFileSync('gzip', ['-t', r.path])
  })

  test('a live SQLite database is copied consistently, including what only its WAL holds', async () => {
    const db = path.join(dataDir, 'app.db')
    execFileSync('sqlite3', [db, 'PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);'])
    // A writer that keeps the database open with rows only in the WAL (no checkpoint).
    const writer = spawn('sqlite3', [db], { stdio: ['pipe', 'pipe', 'inherit'] })
    writer.stdin.write('PRAGMA wal_autocheckpoint=0;\nINSERT INTO t VALUES (2),(3);\nSELECT \'ready\';\n')
    await new Promise<void>((resolve) => writer.stdout.on('data', (d) => String(d).includes('ready') && resolve()))
    try {
      // Copying the main file alone (what a plain tar of data/ would do) loses rows 2 and 3.
      const naive = path.join(dir, 'naive.db')
      execFileSync('cp', [db, naive])
      expect(execFileSync('sqlite3', [naive, 'SELECT count(*) FROM t'], { encoding: 'utf8' }).trim()).toBe('1')
      const r = await backup()
      expect(r.manifest.files.find((f) => f.path === 'app.db')).toMatchObject({ sqlite: true })
      expect(r.manifest.files.map((f) => f.path)).not.toContain('app.db-wal')
      const out = path.join(dir, 'restored')
      await mkdir(out)
      execFileSync('tar', ['xzf', r.path, '-C', out])
      expect(execFileSync('sqlite3', [path.join(out, 'app.db'), 'SELECT group_concat(x) FROM t'], { encoding: 'utf8' }).trim()).toBe('1,2,3')
    } finally {
      writer.stdin.end('.quit\n')
      await new Promise((r) => writer.once('exit', r))
    }
  })

  test('made as the data\'s owner, a database or a folder swapped for a symlink to root-only data is refused or kept as a link, never read', async () => {
    const owner = { uid: 65534, gid: 65534 }
    await chmod(dir, 0o755)
    const secret = path.join(dir, 'secret')
    await mkdir(secret, { mode: 0o700 })
    execFileSync('sqlite3', [path.join(secret, 'root.db'), "CREATE TABLE s(x); INSERT INTO s VALUES ('root only');"])
    await writeFile(path.join(secret, 'key.txt'), 'root only\n', { mode: 0o600 })
    await mkdir(backupDir)
    // A folder of the data swapped for a link to a root-only folder: archived as the link it is.
    await symlink(secret, path.join(dataDir, 'd'))
    execFileSync('chown', ['-R', `${owner.uid}:${owner.gid}`, dataDir, backupDir])
    const asOwner = async () => {
      const r = await run(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'test/support/backup-as.ts'), JSON.stringify({ app: 'upkeep', roots, backupDir, fromVersion: '1.0.0', updateId: 'u1' })], { ...owner, cwd: repoRoot, timeoutMs: 60_000 })
      return JSON.parse(r.stdout) as { ok: boolean; path?: string; code?: string; message?: string }
    }
    const made = await asOwner()
    expect(made.ok, made.message).toBe(true)
    const listing = execFileSync('tar', ['tzvf', made.path!], { encoding: 'utf8' })
    expect(listing).toMatch(/^l.* d -> .*secret$/m)
    expect(execFileSync('tar', ['xzOf', made.path!], { encoding: 'latin1', maxBuffer: 256 << 20 })).not.toContain('root only')
    // A live database swapped for a link to a root-only one: archived as a link too, never opened.
    const db = path.join(dataDir, 'app.db')
    await symlink(path.join(secret, 'root.db'), db)
    execFileSync('chown', ['-h', `${owner.uid}:${owner.gid}`, db])
    const second = await asOwner()
    expect(second.ok, second.message).toBe(true)
    expect((await readdir(backupDir)).filter((n) => n.endsWith('.tar.gz')).map((n) => execFileSync('tar', ['xzOf', path.join(backupDir, n)], { encoding: 'latin1', maxBuffer: 256 << 20 })).join('')).not.toContain('root only')
  })

  test('a file named with a backslash beside a symlink of the same stem restores as it was (no "a\\b" read as "a/b")', async () => {
    await symlink('uploads', path.join(dataDir, 'a'))
    await writeFile(path.join(dataDir, 'a\\pwned'), 'mine\n')
    const r = await backup()
    const out = path.join(dir, 'restored')
    await mkdir(out)
    execFileSync('tar', ['xzf', r.path, '-C', out])
    expect(await readFile(path.join(out, 'a\\pwned'), 'utf8')).toBe('mine\n')
    expect(await readdir(path.join(out, 'uploads'))).not.toContain('pwned')
  })

  test('a full disk is DISK_FULL and leaves no partial archive', async () => {
    await mkdir(backupDir)
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', backupDir])
    try {
      await expect(backup()).rejects.toMatchObject({ code: 'DISK_FULL' })
      expect(await readdir(backupDir)).toEqual([])
    } finally {
      execFileSync('umount', [backupDir])
    }
  })
})

describe('restore and change detection', () => {
  test('restoreBackup puts the backup back and keeps what was there aside', async () => {
    const r = await backup()
    expect(await dataChangedSince(r.manifest, roots)).toBe(false)
    await writeFile(path.join(dataDir, 'settings.json'), '{"theme":"migrated"}\n')
    await writeFile(path.join(dataDir, 'new-table.json'), '[]')
    expect(await dataChangedSince(r.manifest, roots)).toBe(true)
    const aside = path.join(dataDir, '.rolled-back', 'u1-v1.1.0')
    await restoreBackup({ archive: r.path, roots, asideDir: aside, exec })
    expect(await readFile(path.join(dataDir, 'settings.json'), 'utf8')).toBe('{"theme":"dark"}\n')
    expect(await readFile(path.join(aside, 'settings.json'), 'utf8')).toBe('{"theme":"migrated"}\n')
    expect(await readFile(path.join(aside, 'new-table.json'), 'utf8')).toBe('[]')
    // The updater's own files stay where they are.
    expect(await readFile(path.join(dataDir, 'update-journal.json'), 'utf8')).toBe('{}')
    expect(await dataChangedSince(r.manifest, roots)).toBe(false)
  })

  test('backups and the kept-aside data on another filesystem (a tmpfs): every move in the data is still a rename, the rest a copy', async () => {
    await mkdir(backupDir)
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', backupDir])
    try {
      const app: DataRoot[] = [{ abs: dataDir, prefix: 'data', exclude: [] }]
      const r = await createBackup({ app: 'notes', roots: app, backupDir, fromVersion: '1.0.0', updateId: 'u2', now: new Date(), exec })
      await writeFile(path.join(dataDir, 'settings.json'), '{"theme":"migrated"}\n')
      const aside = path.join(backupDir, 'rolled-back', 'u2-v1.1.0')
      await restoreBackup({ archive: r.path, roots: app, asideDir: aside, exec })
      expect(await readFile(path.join(dataDir, 'settings.json'), 'utf8')).toBe('{"theme":"dark"}\n')
      expect(await readFile(path.join(aside, 'data', 'settings.json'), 'utf8')).toBe('{"theme":"migrated"}\n')
      expect((await readdir(dataDir)).filter((n) => n.startsWith('.restore-'))).toEqual([])
      expect(await dataChangedSince(r.manifest, app)).toBe(false)
    } finally {
      execFileSync('umount', [backupDir])
    }
  })

  test('a restore that fails halfway puts the data back as the failed version had it, with nothing left in a working folder', async () => {
    // Archived with logs/, restored into a root whose logs/ is excluded (so it stays, non-empty):
    // moving the backup's logs/ in fails after every data entry has been moved aside.
    const whole: DataRoot[] = [{ abs: dataDir, prefix: '', exclude: [] }]
    const r = await createBackup({ app: 'upkeep', roots: whole, backupDir, fromVersion: '1.0.0', updateId: 'u3', now: new Date(), exec })
    await writeFile(path.join(dataDir, 'settings.json'), '{"theme":"migrated"}\n')
    await writeFile(path.join(dataDir, 'new-table.json'), '[]')
    const before = (await readdir(dataDir)).sort()
    const aside = path.join(dir, 'rolled-back', 'u3-v1.1.0')
    const failing: DataRoot[] = [{ abs: dataDir, prefix: '', exclude: ['logs/'] }]
    await expect(restoreBackup({ archive: r.path, roots: failing, asideDir: aside, exec })).rejects.toThrow(`${dataDir} was left as the failed version had it`)
    expect((await readdir(dataDir)).sort()).toEqual(before)
    expect(await readFile(path.join(dataDir, 'settings.json'), 'utf8')).toBe('{"theme":"migrated"}\n')
    expect(await readFile(path.join(dataDir, 'new-table.json'), 'utf8')).toBe('[]')
    expect((await stat(path.join(dataDir, 'uploads', 'deep', 'photo.bin'))).size).toBe(9 << 20)
    await expect(stat(aside)).rejects.toMatchObject({ code: 'ENOENT' })
  })

  test('with two data paths, a failure in the second names the first as restored and leaves the second as it was', async () => {
    const uploads = path.join(dir, 'uploads')
    await mkdir(path.join(uploads, 'cache'), { recursive: true })
    await writeFile(path.join(uploads, 'a.txt'), 'a1')
    await writeFile(path.join(uploads, 'cache', 'c.bin'), 'c')
    const two: DataRoot[] = [
      { abs: dataDir, prefix: 'data', exclude: [] },
      { abs: uploads, prefix: 'uploads', exclude: [] },
    ]
    const r = await createBackup({ app: 'notes', roots: two, backupDir, fromVersion: '1.0.0', updateId: 'u4', now: new Date(), exec })
    await writeFile(path.join(dataDir, 'settings.json'), '{"theme":"migrated"}\n')
    await writeFile(path.join(uploads, 'a.txt'), 'a2')
    // uploads/cache/ excluded and non-empty: the backup's cache/ cannot move in.
    const failing: DataRoot[] = [two[0]!, { ...two[1]!, exclude: ['cache/'] }]
    const err = await restoreBackup({ archive: r.path, roots: failing, asideDir: path.join(dir, 'rolled-back', 'u4-v1.1.0'), exec }).catch((e: Error) => e)
    expect(err).toBeInstanceOf(Error)
    expect((err as Error).message).toContain(`(${dataDir} was restored already); ${uploads} was left as the failed version had it`)
    expect(await readFile(path.join(dataDir, 'settings.json'), 'utf8')).toBe('{"theme":"dark"}\n')
    expect(await readFile(path.join(uploads, 'a.txt'), 'utf8')).toBe('a2')
    expect((await readdir(uploads)).sort()).toEqual(['a.txt', 'cache'])
  })

  test('a touched file with the same content is not a change', async () => {
    const r = await backup()
    await utimes(path.join(dataDir, 'settings.json'), new Date(), new Date(Date.now() + 5000))
    expect(await dataChangedSince(r.manifest, roots)).toBe(false)
  })
})

describe('retention', () => {
  test('keeps the newest N backups and their sidecar files', async () => {
    await mkdir(backupDir)
    for (let day = 1; day <= 7; day++) {
      const name = backupName('upkeep', '1.0.0', new Date(`2026-11-0${day}T10:00:00Z`))
      for (const f of [name, `${name}.sha256`, `${name}.manifest.json`]) await writeFile(path.join(backupDir, f), '')
    }
    await writeFile(path.join(backupDir, '.upkeep-1.0.0-20261108T100000Z.tar.gz.tmp'), 'partial')
    const removed = await pruneBackups(backupDir, 'upkeep', 5)
    expect(removed).toEqual(['upkeep-1.0.0-20261102T100000Z.tar.gz', 'upkeep-1.0.0-20261101T100000Z.tar.gz'])
    const left = (await readdir(backupDir)).filter((n) => n.endsWith('.tar.gz'))
    expect(left.sort()).toEqual([3, 4, 5, 6, 7].map((d) => `upkeep-1.0.0-2026110${d}T100000Z.tar.gz`))
    expect(await readdir(backupDir)).toHaveLength(15)
  })
})
