import { constants } from 'node:fs'
import { open } from 'node:fs/promises'

// data/ belongs to the server's user, so whatever a compromised server planted there is what the
// root updater finds: symlinks to root-only files, FIFOs that block a reader for ever, huge
// files, records it forged. Everything the updater reads there goes through this file.

/** No symlink is followed (ELOOP) and opening a FIFO does not wait for a writer. */
export const NO_FOLLOW_READ = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK
/** Appending never follows a symlink planted in place of the file, nor waits for a FIFO's reader. */
export const NO_FOLLOW_APPEND = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK

/** Root trusts only what root wrote; anyone else trusts root and themselves. */
export function isTrustedOwner(uid: number, self: number | undefined = process.getuid?.()): boolean {
  return uid === self || (self !== 0 && uid === 0)
}

export interface DataFileOptions {
  /** Refuse a bigger file (it is not one of ours). */
  maxBytes: number
  /** Refuse a file whose owner is not trusted (isTrustedOwner): records the updater itself wrote. */
  trustedOnly?: boolean
}

/**
 * Reads a small regular file from data/ without following a symlink or blocking on a FIFO.
 * Undefined when there is none; throws an Error saying why a file that is there was refused.
 */
export async function readDataFile(file: string, opts: DataFileOptions): Promise<string | undefined> {
  let h
  try {
    h = await open(file, NO_FOLLOW_READ)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return undefined
    if (code === 'ELOOP') throw new Error(`${file} is a symbolic link`)
    throw err
  }
  try {
    const s = await h.stat()
    if (!s.isFile()) throw new Error(`${file} is not a regular file`)
    if (s.size > opts.maxBytes) throw new Error(`${file} is ${s.size} bytes, more than ${opts.maxBytes}`)
    if (opts.trustedOnly && !isTrustedOwner(s.uid)) throw new Error(`${file} belongs to uid ${s.uid}, not to the updater`)
    // Read no more than the limit, even if the file grows meanwhile.
    const buf = Buffer.alloc(Math.min(s.size, opts.maxBytes) + 1)
    let n = 0
    for (let r = 1; r > 0 && n < buf.length; n += r) r = (await h.read(buf, n, buf.length - n, n)).bytesRead
    if (n > opts.maxBytes) throw new Error(`${file} is more than ${opts.maxBytes} bytes`)
    return buf.toString('utf8', 0, n)
  } finally {
    await h.close()
  }
}
