import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile, utimes } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { createExec, type Exec } from '../../updater/adapters/exec'
import { backupName, createBackup, dataChangedSince, pruneBackups, restoreBackup } from '../../updater/backup-archive'

let dir: string
let dataDir: string
let backupDir: string
const exec = createExec()

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'upkeep-backup-'))
  dataDir = path.join(dir, 'data')
  backupDir = path.join(dir, 'backups')
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

const backup = (now = new Date('2026-11-23T10:00:00Z')) => createBackup({ dataDir, backupDir, fromVersion: '1.0.0', updateId: 'u1', now, exec })

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

  test('run by root for the checkout\'s owner, sqlite3 runs as the owner: a database swapped for a symlink to a root-only one is not copied', async () => {
    const owner = { uid: 65534, gid: 65534, home: dir, name: 'nobody' }
    await chmod(dir, 0o755)
    const secret = path.join(dir, 'secret.db')
    execFileSync('sqlite3', [secret, "CREATE TABLE s(x); INSERT INTO s VALUES ('root only');"])
    await chmod(secret, 0o600)
    const db = path.join(dataDir, 'app.db')
    execFileSync('sqlite3', [db, 'CREATE TABLE t(x);'])
    await mkdir(backupDir)
    execFileSync('chown', ['-R', `${owner.uid}:${owner.gid}`, dataDir, backupDir])
    const asOwner = createExec({ runAs: owner })
    // The server swaps the listed database for a symlink just before sqlite3 opens it.
    const swapping: Exec = async (file, args, o) => {
      if (file === 'sqlite3') {
        await rm(db)
        await symlink(secret, db)
      }
      return asOwner(file, args, o)
    }
    const r = createBackup({ dataDir, backupDir, fromVersion: '1.0.0', updateId: 'u1', now: new Date(), exec: swapping, runAs: owner })
    await expect(r).rejects.toMatchObject({ code: 'BACKUP_FAILED', message: expect.stringContaining('app.db') })
    expect((await readdir(backupDir)).filter((n) => n.endsWith('.tar.gz'))).toEqual([])
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
    expect(await dataChangedSince(r.manifest, dataDir)).toBe(false)
    await writeFile(path.join(dataDir, 'settings.json'), '{"theme":"migrated"}\n')
    await writeFile(path.join(dataDir, 'new-table.json'), '[]')
    expect(await dataChangedSince(r.manifest, dataDir)).toBe(true)
    const aside = path.join(dataDir, '.rolled-back', 'u1-v1.1.0')
    await restoreBackup({ archive: r.path, dataDir, asideDir: aside, exec })
    expect(await readFile(path.join(dataDir, 'settings.json'), 'utf8')).toBe('{"theme":"dark"}\n')
    expect(await readFile(path.join(aside, 'settings.json'), 'utf8')).toBe('{"theme":"migrated"}\n')
    expect(await readFile(path.join(aside, 'new-table.json'), 'utf8')).toBe('[]')
    // The updater's own files stay where they are.
    expect(await readFile(path.join(dataDir, 'update-journal.json'), 'utf8')).toBe('{}')
    expect(await dataChangedSince(r.manifest, dataDir)).toBe(false)
  })

  test('a touched file with the same content is not a change', async () => {
    const r = await backup()
    await utimes(path.join(dataDir, 'settings.json'), new Date(), new Date(Date.now() + 5000))
    expect(await dataChangedSince(r.manifest, dataDir)).toBe(false)
  })
})

describe('retention', () => {
  test('keeps the newest N backups and their sidecar files', async () => {
    await mkdir(backupDir)
    for (let day = 1; day <= 7; day++) {
      const name = backupName('1.0.0', new Date(`2026-11-0${day}T10:00:00Z`))
      for (const f of [name, `${name}.sha256`, `${name}.manifest.json`]) await writeFile(path.join(backupDir, f), '')
    }
    await writeFile(path.join(backupDir, '.upkeep-1.0.0-20261108T100000Z.tar.gz.tmp'), 'partial')
    const removed = await pruneBackups(backupDir, 5)
    expect(removed).toEqual(['upkeep-1.0.0-20261102T100000Z.tar.gz', 'upkeep-1.0.0-20261101T100000Z.tar.gz'])
    const left = (await readdir(backupDir)).filter((n) => n.endsWith('.tar.gz'))
    expect(left.sort()).toEqual([3, 4, 5, 6, 7].map((d) => `upkeep-1.0.0-2026110${d}T100000Z.tar.gz`))
    expect(await readdir(backupDir)).toHaveLength(15)
  })
})
