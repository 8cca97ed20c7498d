import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { chmod, lstat, mkdir, open, readdir, readFile, readlink, rename, rm, stat } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { PassThrough, Transform, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { promisify } from 'node:util'
import zlib from 'node:zlib'
import { TarArchive } from 'archiver'
import { fsyncDir, writeFileAtomic, writeJsonAtomic } from './shared/atomic-write'
import { UpdateError } from './shared/errors'
import type { Exec } from './adapters/exec'

/**
 * Backups of `data/`: `BACKUP_DIR/upkeep-<fromVersion>-<UTC stamp>.tar.gz`, a plain gzip'd tar
 * that `tar xzf` restores by hand, with `<archive>.sha256` (for `sha256sum -c`) and
 * `<archive>.manifest.json` (every file's size, mtime and sha256). All 0600.
 *
 * Compression: gzip level 1, compressed in 4 MiB blocks on all cores at once (Node's zlib in
 * libuv's thread pool), each block a gzip member of its own; a block that does not compress
 * (photos, archives) is stored (level 0) instead of deflated for nothing. RFC 1952 allows concatenated
 * members and every gunzip (GNU tar's included) reads them as one stream, so the result is an
 * ordinary .tar.gz, made at 2-3× the speed of one zlib stream and ~8× archiver's gzip-6 default,
 * without a new dependency (pigz would need a package on every server).
 */
export interface BackupManifest {
  schema: 1
  archive: string
  sha256: string
  bytes: number
  dataBytes: number
  createdAt: string
  fromVersion: string
  updateId: string
  files: { path: string; size: number; mtimeMs: number; sha256: string; sqlite?: true }[]
}

/** Files in data/ that belong to the updater's own bookkeeping, not to the app: never backed up, restored or moved aside. */
const RUNTIME_NAMES = new Set([
  'update-journal.json',
  'update-status.jsonl',
  'update-history.jsonl',
  'update-request.json',
  'update.lock',
  'update.lock.owner.json',
  'release-cache.json',
  'server.pid',
  'logs',
  '.rolled-back',
])

export function isRuntimeEntry(topLevelName: string): boolean {
  return RUNTIME_NAMES.has(topLevelName) || topLevelName.startsWith('.restore-') || /^\..*\.tmp$/.test(topLevelName)
}

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0')
const BLOCK = 4 << 20
const gzip = promisify(zlib.gzip)

interface Entry {
  rel: string
  abs: string
  kind: 'file' | 'dir' | 'symlink'
  size: number
  mtime: Date
  mode: number
  uid: number
  gid: number
}

/** Everything under dataDir that is the app's data, in a stable order. */
export async function listData(dataDir: string): Promise<Entry[]> {
  const out: Entry[] = []
  const walk = async (dir: string, rel: string): Promise<void> => {
    const names = (await readdir(dir)).sort()
    for (const name of names) {
      if (!rel && isRuntimeEntry(name)) continue
      const abs = path.join(dir, name)
      const r = rel ? `${rel}/${name}` : name
      const s = await lstat(abs).catch(() => undefined)
      if (!s) continue
      const base = { rel: r, abs, size: s.size, mtime: s.mtime, mode: s.mode & 0o7777, uid: s.uid, gid: s.gid }
      if (s.isDirectory()) {
        out.push({ ...base, kind: 'dir', size: 0 })
        await walk(abs, r)
      } else if (s.isSymbolicLink()) out.push({ ...base, kind: 'symlink', size: 0 })
      else if (s.isFile()) out.push({ ...base, kind: 'file' })
    }
  }
  await walk(dataDir, '')
  // A live SQLite database's journal files are covered by the consistent copy of the database.
  const sqliteBases = new Set<string>()
  for (const e of out) if (e.kind === 'file' && (await isSqlite(e.abs))) sqliteBases.add(e.rel)
  return out.filter((e) => !/-(wal|shm|journal)$/.test(e.rel) || !sqliteBases.has(e.rel.replace(/-(wal|shm|journal)$/, '')))
}

export async function isSqlite(file: string): Promise<boolean> {
  try {
    const h = await open(file, 'r')
    try {
      const buf = Buffer.alloc(16)
      const { bytesRead } = await h.read(buf, 0, 16, 0)
      return bytesRead === 16 && buf.equals(SQLITE_MAGIC)
    } finally {
      await h.close()
    }
  } catch {
    return false
  }
}

const SAMPLE = 32 << 10

/**
 * gzip level for a block: 1, or 0 (stored) when a sample of it does not compress, as photos
 * and archives do not; deflating those costs most of the CPU and saves nothing.
 */
export function levelFor(block: Buffer): 0 | 1 {
  if (block.length < 2 * SAMPLE) return 1
  const at = Math.floor(block.length / 2)
  const sample = block.subarray(at, at + SAMPLE)
  return zlib.deflateRawSync(sample, { level: 1 }).length > sample.length * 0.95 ? 0 : 1
}

// One output chunk per block: with zlib's default 16 KiB chunks, every chunk is a round trip
// from the thread pool to this thread, which then spends its time in callbacks.
const gzipBlock = (block: Buffer) => gzip(block, { level: levelFor(block), chunkSize: block.length + (64 << 10) })

/**
 * Compresses a byte stream as consecutive gzip members, `concurrency` blocks at a time (libuv's
 * thread pool has 4 threads; 4 blocks in flight keep 2 cores busy while this thread reads and tars).
 */
export function parallelGzip(concurrency = Math.max(4, os.availableParallelism())): Transform {
  let pending: Buffer[] = []
  let pendingBytes = 0
  const inFlight: Promise<Buffer>[] = []
  const t: Transform = new Transform({
    async transform(chunk: Buffer, _enc, done) {
      try {
        pending.push(chunk)
        pendingBytes += chunk.length
        while (pendingBytes >= BLOCK) {
          const all = Buffer.concat(pending)
          pending = [all.subarray(BLOCK)]
          pendingBytes = all.length - BLOCK
          inFlight.push(gzipBlock(all.subarray(0, BLOCK)))
          while (inFlight.length >= concurrency) t.push(await inFlight.shift()!)
        }
        done()
      } catch (err) {
        done(err as Error)
      }
    },
    async flush(done) {
      try {
        if (pendingBytes > 0 || inFlight.length === 0) inFlight.push(gzipBlock(Buffer.concat(pending)))
        while (inFlight.length) t.push(await inFlight.shift()!)
        done()
      } catch (err) {
        done(err as Error)
      }
    },
  })
  return t
}

export interface CreateBackupOptions {
  dataDir: string
  backupDir: string
  fromVersion: string
  updateId: string
  now: Date
  /** Runs the sqlite3 CLI for consistent copies of live databases. */
  exec: Exec
  onProgress?: (doneBytes: number, totalBytes: number) => void
  signal?: AbortSignal
}

export interface BackupResult {
  path: string
  manifestPath: string
  manifest: BackupManifest
}

export function backupName(fromVersion: string, now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
  return `upkeep-${fromVersion.replace(/[^0-9A-Za-z.+-]/g, '_')}-${stamp}.tar.gz`
}

export async function createBackup(o: CreateBackupOptions): Promise<BackupResult> {
  await mkdir(o.backupDir, { recursive: true, mode: 0o700 })
  const name = backupName(o.fromVersion, o.now)
  const final = path.join(o.backupDir, name)
  const tmp = path.join(o.backupDir, `.${name}.tmp`)
  const snapDir = path.join(o.backupDir, `.sqlite-${o.updateId}`)
  const entries = await listData(o.dataDir)
  const total = entries.reduce((n, e) => n + e.size, 0)
  const files: BackupManifest['files'] = []
  try {
    // Consistent copies of live SQLite databases (SQLite's online backup), archived in their place.
    const sources = new Map<string, string>()
    for (const e of entries) {
      if (e.kind !== 'file' || !(await isSqlite(e.abs))) continue
      const copy = path.join(snapDir, e.rel)
      await mkdir(path.dirname(copy), { recursive: true, mode: 0o700 })
      try {
        await o.exec('sqlite3', [e.abs, `.backup '${copy.replace(/'/g, "''")}'`], { cwd: o.dataDir, asSelf: true, ...(o.signal ? { signal: o.signal } : {}) })
      } catch (err) {
        const missing = (err as { code?: number }).code === undefined
        throw new UpdateError('BACKUP_FAILED', `cannot copy the SQLite database ${e.rel}: ${(err as Error).message}`, {
          step: 'backup',
          hint: missing ? 'Install the sqlite3 command (Debian: apt-get install sqlite3); it makes a consistent copy of a live database.' : 'Check that the database is not corrupt: sqlite3 FILE "PRAGMA integrity_check"',
          cause: err,
        })
      }
      sources.set(e.rel, copy)
    }

    const archive = new TarArchive()
    const archiveHash = createHash('sha256')
    let archiveBytes = 0
    let done = 0
    const out = createWriteStream(tmp, { mode: 0o600, highWaterMark: 4 << 20 })
    const counting = new Transform({
      transform(chunk: Buffer, _e, cb) {
        archiveHash.update(chunk)
        archiveBytes += chunk.length
        cb(null, chunk)
      },
    })
    const written = pipeline(archive, parallelGzip(), counting, out, ...(o.signal ? [{ signal: o.signal }] : []))
    // A failure of the output (ENOSPC) ends the wait for the entry being written, too.
    const broken = written.then(
      () => new Promise<never>(() => {}),
      (err: unknown) => Promise.reject(err),
    )
    broken.catch(() => {})
    // One entry at a time: each file's hash is complete when archiver says the entry is written.
    const add = (put: () => void) =>
      Promise.race([
        new Promise<void>((resolve, reject) => {
          const onEntry = () => {
            archive.off('error', onError)
            resolve()
          }
          const onError = (err: Error) => {
            archive.off('entry', onEntry)
            reject(err)
          }
          archive.once('entry', onEntry)
          archive.once('error', onError)
          put()
        }),
        broken,
      ])
    for (const e of entries) {
      const meta = { name: e.rel, mode: e.mode, date: e.mtime, uid: e.uid, gid: e.gid }
      if (e.kind === 'dir') await add(() => archive.append(Buffer.alloc(0), { ...meta, name: `${e.rel}/`, type: 'directory' } as never))
      else if (e.kind === 'symlink') {
        const target = await readlink(e.abs)
        await add(() => archive.symlink(e.rel, target, e.mode))
      } else {
        const src = sources.get(e.rel) ?? e.abs
        const s = await stat(src)
        const hash = createHash('sha256')
        // Big reads: every chunk passes several streams, so fewer chunks cost less CPU.
        const reader = createReadStream(src, { highWaterMark: 1 << 20 })
        const tee = new PassThrough({ highWaterMark: 1 << 20 })
        reader.on('data', (c) => {
          hash.update(c as Buffer)
          done += (c as Buffer).length
          o.onProgress?.(done, total)
        })
        reader.on('error', (err) => tee.destroy(err))
        reader.pipe(tee)
        await add(() => archive.append(tee as Readable, { ...meta, stats: s } as never))
        files.push({ path: e.rel, size: e.size, mtimeMs: e.mtime.getTime(), sha256: hash.digest('hex'), ...(sources.has(e.rel) ? { sqlite: true as const } : {}) })
      }
    }
    await archive.finalize()
    await written
    const h = await open(tmp, 'r+')
    await h.sync()
    await h.close()
    await rename(tmp, final)
    const manifest: BackupManifest = {
      schema: 1,
      archive: name,
      sha256: archiveHash.digest('hex'),
      bytes: archiveBytes,
      dataBytes: total,
      createdAt: o.now.toISOString(),
      fromVersion: o.fromVersion,
      updateId: o.updateId,
      files,
    }
    const manifestPath = `${final}.manifest.json`
    await writeJsonAtomic(manifestPath, manifest, { mode: 0o600 })
    await writeFileAtomic(`${final}.sha256`, `${manifest.sha256}  ${name}\n`, { mode: 0o600 })
    await chmod(final, 0o600)
    await fsyncDir(o.backupDir)
    return { path: final, manifestPath, manifest }
  } catch (err) {
    await rm(tmp, { force: true })
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC') {
      throw new UpdateError('DISK_FULL', `no space left in ${o.backupDir} while backing up ${o.dataDir}`, {
        step: 'backup',
        hint: `Free space there or set BACKUP_DIR to a larger disk; the backup needs about ${formatBytes(total)}.`,
        cause: err,
      })
    }
    throw err
  } finally {
    await rm(snapDir, { recursive: true, force: true })
  }
}

export async function readManifest(file: string): Promise<BackupManifest | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as BackupManifest
  } catch {
    return undefined
  }
}

/**
 * True when data/ differs from what the backup holds: a file added, removed, resized, or with a
 * new mtime and other content. (A live SQLite database counts as changed when its size or mtime moved.)
 */
export async function dataChangedSince(manifest: BackupManifest, dataDir: string): Promise<boolean> {
  const now = (await listData(dataDir)).filter((e) => e.kind === 'file')
  if (now.length !== manifest.files.length) return true
  const byPath = new Map(manifest.files.map((f) => [f.path, f]))
  for (const e of now) {
    const f = byPath.get(e.rel)
    if (!f || f.size !== e.size) return true
    if (f.mtimeMs === e.mtime.getTime()) continue
    if (f.sqlite) return true
    if ((await sha256File(e.abs)) !== f.sha256) return true
  }
  return false
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(file), hash)
  return hash.digest('hex')
}

/**
 * Puts the backup's data in place: extracts it with plain `tar` beside data/, moves what is
 * there now into `asideDir` (never deleted), then moves the restored entries in.
 */
export async function restoreBackup(o: { archive: string; dataDir: string; asideDir: string; exec: Exec }): Promise<void> {
  // tar runs as root (to keep owners) and follows a symlink at -C: extract where the server,
  // which can write data/, cannot swap the directory for a link into a live build.
  const besideArchive = (await stat(path.dirname(o.archive))).dev === (await stat(o.dataDir)).dev
  const staging = path.join(besideArchive ? path.dirname(o.archive) : o.dataDir, `.restore-${path.basename(o.asideDir)}`)
  await rm(staging, { recursive: true, force: true })
  await mkdir(staging, { recursive: true })
  await o.exec('tar', ['-xzf', o.archive, '-C', staging], { cwd: o.dataDir, asSelf: true })
  await mkdir(o.asideDir, { recursive: true })
  for (const name of await readdir(o.dataDir)) {
    if (isRuntimeEntry(name)) continue
    await rename(path.join(o.dataDir, name), path.join(o.asideDir, name))
  }
  for (const name of await readdir(staging)) await rename(path.join(staging, name), path.join(o.dataDir, name))
  await rm(staging, { recursive: true, force: true })
  await fsyncDir(o.dataDir)
}

/** Keeps the newest `keep` backups (by the UTC stamp in their names) and their sidecar files. */
export async function pruneBackups(backupDir: string, keep: number): Promise<string[]> {
  let names: string[]
  try {
    names = await readdir(backupDir)
  } catch {
    return []
  }
  const stampOf = (n: string) => /-(\d{8}T\d{6}Z)\.tar\.gz$/.exec(n)?.[1] ?? ''
  const archives = names.filter((n) => /^upkeep-.*\.tar\.gz$/.test(n)).sort((a, b) => stampOf(b).localeCompare(stampOf(a)) || b.localeCompare(a))
  const removed = archives.slice(keep)
  for (const n of removed) {
    for (const f of [n, `${n}.sha256`, `${n}.manifest.json`]) await rm(path.join(backupDir, f), { force: true })
  }
  // Leftovers of a backup that was interrupted.
  for (const n of names) if (/^\.upkeep-.*\.tmp$/.test(n) || n.startsWith('.sqlite-')) await rm(path.join(backupDir, n), { recursive: true, force: true })
  return removed
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n / 1024
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`
}
