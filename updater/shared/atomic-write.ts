import { randomBytes } from 'node:crypto'
import { mkdir, open, rename, rm } from 'node:fs/promises'
import path from 'node:path'

export interface AtomicWriteOptions {
  /** File mode of the new file, e.g. 0o600 for secrets. Default 0o644. */
  mode?: number
  /** Owner of the new file; lets a root CLI write into the service user's data dir without locking it out. */
  owner?: { uid: number; gid: number }
}

/**
 * Replaces `file` so that a reader, a crash or a power cut sees either the old or the new
 * content, never a mix: write a temp file beside it, fsync it, rename it over, fsync the directory.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  const dir = path.dirname(file)
  await mkdir(dir, { recursive: true })
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  const handle = await open(tmp, 'wx', opts.mode ?? 0o644)
  try {
    await handle.writeFile(data)
    // open()'s mode is filtered by the umask; chmod makes the requested mode exact.
    await handle.chmod(opts.mode ?? 0o644)
    if (opts.owner) await handle.chown(opts.owner.uid, opts.owner.gid)
    await handle.sync()
  } catch (err) {
    await handle.close()
    await rm(tmp, { force: true })
    throw err
  }
  await handle.close()
  try {
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  await fsyncDir(dir)
}

/** Makes a rename or unlink in `dir` durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

export async function writeJsonAtomic(file: string, value: unknown, opts: AtomicWriteOptions = {}): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n', opts)
}
