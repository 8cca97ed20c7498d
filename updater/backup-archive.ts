import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { chmod, lstat, mkdir, open, type FileHandle, readdir, readFile, readlink, rename, rm, stat } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { promisify } from 'node:util'
import zlib from 'node:zlib'
import tar from 'tar-stream'
import { fsyncDir, writeFileAtomic, writeJsonAtomic } from './shared/atomic-write'
import { NO_FOLLOW_READ } from './shared/data-file'
import { UpdateError } from './shared/errors'
import type { Exec } from './adapters/exec'

/**
 * Backups of an app's data: `BACKUP_DIR/<app>-<fromVersion>-<UTC stamp>.tar.gz`, a plain gzip'd
 * tar that `tar xzf` restores by hand, with `<archive>.sha256` (for `sha256sum -c`) and
 * `<archive>.manifest.json` (every file's size, mtime and sha256). All 0600. Made and restored by
 * the app's own user (the updater runs as it), so a symlink planted in the data reaches nothing
 * that user could not read anyway.
 *
 * Each data path is a "root"; its entries are archived under the root's prefix (its path inside
 * the checkout, e.g. `data/`), Upkeep's own data dir under none (so `tar xzf -C data` restores it).
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
  /** The data roots archived, by prefix (absent in backups made before there were several). */
  roots?: { prefix: string; path: string }[]
  files: { path: string; size: number; mtimeMs: number; sha256: string; sqlite?: true }[]
}

/** A data path of the app and what of it is not data. */
export interface DataRoot {
  /** The directory. */
  abs: string
  /** Archive path of its entries ('' for none). */
  prefix: string
  /** Relative paths inside it that are not backed up, restored or moved aside (`dir/` for a directory). */
  exclude: readonly string[]
}

/** Transient files of atomic writes and of an interrupted restore: never data. */
function isTransient(name: string): boolean {
  return name.startsWith('.restore-') || /^\..*\.tmp$/.test(name)
}

/** True when `rel` (a path inside a root) is excluded by one of `exclude`. */
export function isExcluded(rel: string, exclude: readonly string[]): boolean {
  if (isTransient(path.basename(rel))) return true
  for (const e of exclude) {
    const dir = e.endsWith('/') ? e.slice(0, -1) : undefined
    if (rel === (dir ?? e) || (dir !== undefined && rel.startsWith(dir + '/'))) return true
  }
  return false
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

/** Everything under the roots that is the app's data, in a stable order; `rel` is the archive path. */
export async function listData(roots: readonly DataRoot[]): Promise<Entry[]> {
  const out: Entry[] = []
  const walk = async (root: DataRoot, dir: string, rel: string): Promise<void> => {
    let names: string[]
    try {
      names = (await readdir(dir)).sort()
    } catch (err) {
      // A root that does not exist yet (the app never ran) has no data to keep.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !rel) return
      throw err
    }
    for (const name of names) {
      const r = rel ? `${rel}/${name}` : name
      if (isExcluded(r, root.exclude)) continue
      const abs = path.join(dir, name)
      const archived = root.prefix ? `${root.prefix}/${r}` : r
      const s = await lstat(abs).catch(() => undefined)
      if (!s) continue
      const base = { rel: archived, abs, size: s.size, mtime: s.mtime, mode: s.mode & 0o7777, uid: s.uid, gid: s.gid }
      if (s.isDirectory()) {
        out.push({ ...base, kind: 'dir', size: 0 })
        await walk(root, abs, r)
      } else if (s.isSymbolicLink()) out.push({ ...base, kind: 'symlink', size: 0 })
      else if (s.isFile()) out.push({ ...base, kind: 'file' })
    }
  }
  for (const root of roots) {
    if (root.prefix) {
      const s = await lstat(root.abs).catch(() => undefined)
      if (!s?.isDirectory()) continue
      out.push({ rel: root.prefix, abs: root.abs, kind: 'dir', size: 0, mtime: s.mtime, mode: s.mode & 0o7777, uid: s.uid, gid: s.gid })
    }
    await walk(root, root.abs, '')
  }
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
  /** The app's name: backups are `<app>-<version>-<stamp>.tar.gz`. */
  app: string
  roots: readonly DataRoot[]
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

export function backupName(app: string, fromVersion: string, now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
  return `${app}-${fromVersion.replace(/[^0-9A-Za-z.+-]/g, '_')}-${stamp}.tar.gz`
}

/** What tar-stream gives for an entry's content (a streamx Writable). */
interface EntrySink {
  write(chunk: Uint8Array): boolean
  once(event: 'drain', cb: () => void): unknown
  end(): unknown
}

/** Reads exactly `size` bytes of an open file (what its tar header announced) into `sink`, hashing them. */
async function copyExactly(fh: FileHandle, size: number, sink: EntrySink, hash: ReturnType<typeof createHash>, onBytes: (n: number) => void): Promise<void> {
  const buf = Buffer.allocUnsafe(1 << 20)
  let pos = 0
  while (pos < size) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos)
    if (bytesRead === 0) throw new Error('shrank while it was read')
    const chunk = Buffer.from(buf.subarray(0, bytesRead))
    hash.update(chunk)
    pos += bytesRead
    onBytes(bytesRead)
    if (!sink.write(chunk)) await new Promise<void>((r) => sink.once('drain', () => r()))
  }
}

/** A data path that vanished or changed type between the listing and its archiving. */
function changedDuringBackup(rel: string, err: NodeJS.ErrnoException): Error {
  if (!['ENOENT', 'EINVAL', 'ELOOP', 'ENOTDIR'].includes(err.code ?? '')) return err
  return new UpdateError('BACKUP_FAILED', `${rel} changed while it was backed up (${err.code}); nothing was updated`, {
    step: 'backup',
    hint: 'Something is moving files in the data directory right now; try again when it is done.',
    cause: err,
  })
}

export async function createBackup(o: CreateBackupOptions): Promise<BackupResult> {
  await mkdir(o.backupDir, { recursive: true, mode: 0o700 })
  const name = backupName(o.app, o.fromVersion, o.now)
  const final = path.join(o.backupDir, name)
  const tmp = path.join(o.backupDir, `.${name}.tmp`)
  const snapDir = path.join(o.backupDir, `.sqlite-${o.updateId}`)
  const entries = await listData(o.roots)
  const total = entries.reduce((n, e) => n + e.size, 0)
  const files: BackupManifest['files'] = []
  try {
    // Consistent copies of live SQLite databases (SQLite's online backup), archived in their place.
    const sources = new Map<string, string>()
    for (const e of entries) {
      if (e.kind !== 'file' || !(await isSqlite(e.abs))) continue
      const copy = path.join(snapDir, `${sources.size}.db`)
      if (!sources.size) await mkdir(snapDir, { mode: 0o700 })
      try {
        await o.exec('sqlite3', [e.abs, `.backup '${copy.replace(/'/g, "''")}'`], { cwd: o.backupDir, ...(o.signal ? { signal: o.signal } : {}) })
      } catch (err) {
        const missing = (err as { code?: number }).code === undefined
        throw new UpdateError('BACKUP_FAILED', `cannot copy the SQLite database ${e.rel}: ${(err as Error).message}`, {
          step: 'backup',
          hint: missing ? 'Install the sqlite3 command (Debian: apt-get install sqlite3); it makes a consistent copy of a live database.' : `Check that the database is not corrupt (sqlite3 FILE "PRAGMA integrity_check") and that the app's user can read it and write in ${o.backupDir}.`,
          cause: err,
        })
      }
      sources.set(e.rel, copy)
    }

    // tar-stream writes names as given (archiver turned a "\" in a file name into "/", so a file
    // "a\b" beside a symlink "a" came back as a path through that link and failed the restore).
    const pack = tar.pack()
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
    const written = pipeline(pack, parallelGzip(), counting, out, ...(o.signal ? [{ signal: o.signal }] : []))
    // A failure of the output (ENOSPC) ends the wait for the entry being written, too.
    const broken = written.then(
      () => new Promise<never>(() => {}),
      (err: unknown) => Promise.reject(err),
    )
    broken.catch(() => {})
    for (const e of entries) {
      const header = { name: e.rel, mode: e.mode, mtime: e.mtime, uid: e.uid, gid: e.gid }
      if (e.kind === 'dir') {
        await Promise.race([new Promise<void>((resolve, reject) => pack.entry({ ...header, type: 'directory' }, (err) => (err ? reject(err) : resolve()))), broken])
      } else if (e.kind === 'symlink') {
        const target = await readlink(e.abs).catch((err: NodeJS.ErrnoException) => {
          throw changedDuringBackup(e.rel, err)
        })
        await Promise.race([new Promise<void>((resolve, reject) => pack.entry({ ...header, type: 'symlink', linkname: target }, (err) => (err ? reject(err) : resolve()))), broken])
      } else {
        const src = sources.get(e.rel) ?? e.abs
        const fh = await open(src, NO_FOLLOW_READ).catch((err: NodeJS.ErrnoException) => {
          throw changedDuringBackup(e.rel, err)
        })
        try {
          const s = await fh.stat()
          if (!s.isFile()) throw new UpdateError('BACKUP_FAILED', `${e.rel} changed into something other than a file during the backup`, { step: 'backup' })
          const hash = createHash('sha256')
          let finished!: () => void
          let failed!: (err: Error) => void
          const entryDone = new Promise<void>((resolve, reject) => {
            finished = resolve
            failed = reject
          })
          const sink = pack.entry({ ...header, size: s.size }, (err) => (err ? failed(err) : finished())) as unknown as EntrySink
          await Promise.race([
            copyExactly(fh, s.size, sink, hash, (n) => {
              done += n
              o.onProgress?.(done, total)
            }).then(() => void sink.end()),
            broken,
          ]).catch((err: Error) => {
            throw err instanceof UpdateError ? err : new UpdateError('BACKUP_FAILED', `${e.rel} ${err.message} during the backup`, { step: 'backup', cause: err })
          })
          await Promise.race([entryDone, broken])
          files.push({ path: e.rel, size: s.size, mtimeMs: e.mtime.getTime(), sha256: hash.digest('hex'), ...(sources.has(e.rel) ? { sqlite: true as const } : {}) })
        } finally {
          await fh.close()
        }
      }
    }
    pack.finalize()
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
      roots: o.roots.map((r) => ({ prefix: r.prefix, path: r.abs })),
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
      throw new UpdateError('DISK_FULL', `no space left in ${o.backupDir} while backing up ${o.roots.map((r) => r.abs).join(', ')}`, {
        step: 'backup',
        hint: `Free space there or set the backup directory to a larger disk; the backup needs about ${formatBytes(total)}.`,
        cause: err,
      })
    }
    if ((err as NodeJS.ErrnoException).code === 'EACCES' || (err as NodeJS.ErrnoException).code === 'ELOOP') {
      throw new UpdateError('BACKUP_FAILED', `cannot read the app's data: ${(err as Error).message}`, {
        step: 'backup',
        hint: "Everything in the data paths must be readable by the app's user (a symlink into another user's files is not).",
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
 * True when the data differs from what the backup holds: a file added, removed, resized, or with a
 * new mtime and other content. (A live SQLite database counts as changed when its size or mtime moved.)
 */
export async function dataChangedSince(manifest: BackupManifest, roots: readonly DataRoot[]): Promise<boolean> {
  const now = (await listData(roots)).filter((e) => e.kind === 'file')
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

/** Moves every entry of `dir` that is data (not excluded) into `to`; `moved` gets each name as it goes. */
async function moveData(dir: string, to: string, exclude: readonly string[], moved: string[]): Promise<void> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  for (const name of names) {
    if (isExcluded(name, exclude)) continue
    await mkdir(to, { recursive: true })
    await rename(path.join(dir, name), path.join(to, name))
    moved.push(name)
  }
}

/** rename(2), or a copy and a delete where the two paths are on different filesystems (or mounts). */
async function moveAcross(from: string, to: string, exec: Exec): Promise<void> {
  await mkdir(path.dirname(to), { recursive: true })
  try {
    await rename(from, to)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err
    await exec('cp', ['-a', from, to], { cwd: path.dirname(to) })
    await rm(from, { recursive: true, force: true })
  }
}

/**
 * Puts the backup's data in place, root by root, inside the root itself (one filesystem, so every
 * move is a rename(2) even when the backups live on another disk): extracts the root's part of the
 * archive with plain `tar` into `<root>/.restore-<id>/`, moves what the root holds now into
 * `.restore-<id>/.aside/`, moves the restored entries in, then the old ones to `asideDir/<prefix>`
 * (never deleted). A failure halfway puts the root back as it was. Runs as the app's user, like
 * everything else it touches.
 */
export async function restoreBackup(o: { archive: string; roots: readonly DataRoot[]; asideDir: string; exec: Exec; onWarning?: (message: string) => void }): Promise<void> {
  const id = path.basename(o.asideDir)
  const done: string[] = []
  for (const root of o.roots) {
    await mkdir(root.abs, { recursive: true })
    const work = path.join(root.abs, `.restore-${id}`)
    await rm(work, { recursive: true, force: true })
    await mkdir(work, { mode: 0o700 })
    await o.exec('tar', ['-xzf', o.archive, '-C', work, ...(root.prefix ? ['--', root.prefix] : [])], { cwd: work })
    const restored = root.prefix ? path.join(work, root.prefix) : work
    const held = path.join(work, '.aside')
    const movedAside: string[] = []
    const movedIn: string[] = []
    try {
      await moveData(root.abs, held, root.exclude, movedAside)
      // Entries of the restore itself are data, whatever the exclusions (they were not archived).
      for (const name of await readdir(restored)) {
        if (restored === work && name === '.aside') continue
        if (root.prefix && restored.startsWith(path.join(work, name) + path.sep)) continue
        await rename(path.join(restored, name), path.join(root.abs, name))
        movedIn.push(name)
      }
    } catch (err) {
      throw await undoRestore({ root: root.abs, restored, held, work, movedIn, movedAside, done, err })
    }
    if (await stat(held).then(() => true, () => false)) {
      try {
        await moveAcross(held, root.prefix ? path.join(o.asideDir, root.prefix) : o.asideDir, o.exec)
      } catch (err) {
        // The data is restored already; what the failed version left stays in the root, never lost.
        const kept = path.join(root.abs, `.rolled-back-${id}`)
        await rename(held, kept)
        o.onWarning?.(`could not move the failed version's data to ${o.asideDir} (${(err as Error).message}); it is kept in ${kept}`)
      }
    }
    await rm(work, { recursive: true, force: true })
    await fsyncDir(root.abs)
    done.push(root.abs)
  }
}

/**
 * A restore that failed halfway puts the root back as it was (the failed version's data, every
 * entry in its place), so nothing is left in a working folder an operator would have to find.
 * Returns the error to throw: the original one, saying where entries remain if some could not go back.
 */
async function undoRestore(u: { root: string; restored: string; held: string; work: string; movedIn: string[]; movedAside: string[]; done: string[]; err: unknown }): Promise<Error> {
  const backupsLeft = await renameBack(u.movedIn, u.root, u.restored)
  const failedLeft = await renameBack(u.movedAside, u.held, u.root)
  const restoredAlready = u.done.length ? ` (${u.done.join(', ')} ${u.done.length > 1 ? 'were' : 'was'} restored already)` : ''
  const why = `${u.err instanceof Error ? u.err.message : String(u.err)}${restoredAlready}`
  const left: string[] = []
  if (backupsLeft.length) left.push(`${backupsLeft.join(', ')} (from the backup) stayed in ${u.root}`)
  if (failedLeft.length) left.push(`${failedLeft.join(', ')} (the failed version's) stayed in ${u.held}`)
  if (left.length) return new Error(`${why}; could not undo all of it: ${left.join('; ')}`, { cause: u.err })
  await rm(u.work, { recursive: true, force: true })
  return new Error(`${why}; ${u.root} was left as the failed version had it`, { cause: u.err })
}

/** Renames each of `names` from `from` back to `to`, last moved first; returns those that stayed. */
async function renameBack(names: readonly string[], from: string, to: string): Promise<string[]> {
  const stayed: string[] = []
  for (const name of [...names].reverse()) {
    await rename(path.join(from, name), path.join(to, name)).catch(() => stayed.push(name))
  }
  return stayed
}

/** Keeps the newest `keep` backups of `app` (by the UTC stamp in their names) and their sidecar files. */
export async function pruneBackups(backupDir: string, app: string, keep: number): Promise<string[]> {
  let names: string[]
  try {
    names = await readdir(backupDir)
  } catch {
    return []
  }
  const stampOf = (n: string) => /-(\d{8}T\d{6}Z)\.tar\.gz$/.exec(n)?.[1] ?? ''
  const archives = names.filter((n) => n.startsWith(`${app}-`) && n.endsWith('.tar.gz') && stampOf(n)).sort((a, b) => stampOf(b).localeCompare(stampOf(a)) || b.localeCompare(a))
  const removed = archives.slice(keep)
  for (const n of removed) {
    for (const f of [n, `${n}.sha256`, `${n}.manifest.json`]) await rm(path.join(backupDir, f), { force: true })
  }
  // Leftovers of a backup or restore that was interrupted.
  for (const n of names) if (/^\..*\.tar\.gz\.tmp$/.test(n) || n.startsWith('.sqlite-') || n.startsWith('.restore-')) await rm(path.join(backupDir, n), { recursive: true, force: true })
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
