import { constants, createReadStream } from 'node:fs'
import { chmod, lstat, mkdir, mkdtemp, open, rename, rm, rmdir, symlink } from 'node:fs/promises'
import path from 'node:path'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import zlib from 'node:zlib'
import tar from 'tar-stream'
import { UpdateError } from '../shared/errors'
import { quoteInput } from '../shared/repo'

export interface UnpackLimits {
  /** Total size of the files once unpacked. */
  maxBytes: number
  maxEntries: number
}

export const DEFAULT_UNPACK_LIMITS: UnpackLimits = { maxBytes: 2 * 1024 ** 3, maxEntries: 200_000 }

export interface Unpacked {
  files: number
  bytes: number
  /** The top-level directory every entry shared, which was stripped. */
  stripped?: string
}

type Node = { kind: 'dir'; mode?: number } | { kind: 'file' } | { kind: 'symlink'; target: string }

const WRITE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW
/** Symlinks followed while resolving one link before it is taken as a loop (Linux's limit). */
const MAX_HOPS = 40

function unsafe(archive: string, message: string): UpdateError {
  return new UpdateError('UNSAFE_ARCHIVE', `${archive}: ${message}; nothing was unpacked`, {
    hint: 'the release archive is refused as a whole; do not install it, and tell its maintainer (releases hold only regular files, directories and links that stay inside)',
  })
}

/** An entry name as path components; refuses absolute names and `..`. Pure. */
export function entryPath(name: string): string[] | string {
  if (name.startsWith('/')) return 'an absolute path'
  const parts = name.split('/').filter((p) => p !== '' && p !== '.')
  if (parts.includes('..')) return 'a ".." component'
  return parts
}

/**
 * Whether symlink `link` (components from the release root) leaves the release, resolving its
 * target as the kernel would, through the other symlinks of the archive. Lexical `..` is not
 * enough: `up -> .` and `a/l -> ../up/..` look inside but resolve to the release's parent. Pure.
 */
export function symlinkEscapes(nodes: ReadonlyMap<string, Node>, link: string[]): boolean {
  const start = nodes.get(link.join('/'))
  if (!start || start.kind !== 'symlink') return false
  let cur = link.slice(0, -1)
  let todo = start.target.split('/')
  if (start.target.startsWith('/')) return true
  for (let hops = 0; todo.length; ) {
    const c = todo.shift()!
    if (c === '' || c === '.') continue
    if (c === '..') {
      if (cur.length === 0) return true
      cur = cur.slice(0, -1)
      continue
    }
    const next = [...cur, c]
    const node = nodes.get(next.join('/'))
    if (node?.kind === 'symlink') {
      if (++hops > MAX_HOPS || node.target.startsWith('/')) return true
      todo = [...node.target.split('/'), ...todo]
      continue
    }
    cur = next
  }
  return false
}

/**
 * Unpacks a .tar.gz into `dest` (which must not exist), as the calling user. Every entry is
 * checked before anything is written for it, and the first bad one refuses the whole archive:
 * absolute paths, `..`, hardlinks, devices, FIFOs, setuid/setgid/sticky bits, symlinks that
 * resolve outside the release, more than `limits`. Files are created with O_EXCL|O_NOFOLLOW
 * inside a fresh directory, so no entry is written through a link. The work happens in a
 * temporary directory beside `dest`, renamed into place at the end and deleted on refusal.
 * When every entry shares one top-level directory, it is stripped. Modes: rwx bits only, and
 * directories keep the owner's rwx so the release can be removed later.
 */
export async function unpackTarGz(archive: string, dest: string, limits: UnpackLimits = DEFAULT_UNPACK_LIMITS): Promise<Unpacked> {
  const label = path.basename(archive)
  if (await lstat(dest).then(() => true, () => false)) {
    throw new UpdateError('INTERNAL', `cannot unpack into ${dest}: it exists`, { hint: 'remove it, then try again' })
  }
  const tmp = await mkdtemp(path.join(path.dirname(dest), `.${path.basename(dest)}.unpack-`))
  const nodes = new Map<string, Node>()
  let files = 0
  let bytes = 0
  let entries = 0

  const source = createReadStream(archive)
  const extract = tar.extract()
  let streamed = 0
  // Bounds what the parser reads besides file data (headers, padding, pax records): a gzip bomb of headers.
  const streamLimit = limits.maxBytes + (limits.maxEntries + 16) * 2048 + (1 << 20)
  const limiter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      streamed += chunk.length
      if (streamed > streamLimit) cb(unsafe(label, `it unpacks to more than ${limits.maxBytes} bytes`))
      else cb(null, chunk)
    },
  })
  const piping = pipeline(source, zlib.createGunzip(), limiter, extract)
  piping.catch(() => {}) // read below, once the entries are done

  const parents = async (parts: string[], name: string) => {
    for (let i = 1; i < parts.length; i++) {
      const key = parts.slice(0, i).join('/')
      const node = nodes.get(key)
      if (!node) {
        await mkdir(path.join(tmp, key), { mode: 0o700 })
        nodes.set(key, { kind: 'dir' })
      } else if (node.kind !== 'dir') throw unsafe(label, `entry ${quoteInput(name)} lies inside ${quoteInput(key)}, which is a ${node.kind === 'symlink' ? 'symlink' : 'file'}`)
    }
  }

  try {
    for await (const entry of extract) {
      const h = entry.header
      const name = h.name
      if (++entries > limits.maxEntries) throw unsafe(label, `it has more than ${limits.maxEntries} entries`)
      const parts = entryPath(name)
      if (typeof parts === 'string') throw unsafe(label, `entry ${quoteInput(name)} has ${parts}`)
      const mode = h.mode ?? 0o644
      if (mode & 0o7000) throw unsafe(label, `entry ${quoteInput(name)} has the ${mode & 0o4000 ? 'setuid' : mode & 0o2000 ? 'setgid' : 'sticky'} bit`)
      const key = parts.join('/')
      const at = path.join(tmp, key)
      const existing = parts.length ? nodes.get(key) : { kind: 'dir' as const }

      switch (h.type) {
        case 'directory':
          if (existing && existing.kind !== 'dir') throw unsafe(label, `entry ${quoteInput(name)} is listed twice`)
          await parents(parts, name)
          if (!existing) await mkdir(at, { mode: 0o700 })
          if (parts.length) nodes.set(key, { kind: 'dir', mode: mode & 0o777 })
          break
        case 'file': {
          if (!parts.length) throw unsafe(label, `entry ${quoteInput(name)} names the release root as a file`)
          if (existing) throw unsafe(label, `entry ${quoteInput(name)} is listed twice`)
          bytes += h.size ?? 0
          if (bytes > limits.maxBytes) throw unsafe(label, `it unpacks to more than ${limits.maxBytes} bytes`)
          await parents(parts, name)
          nodes.set(key, { kind: 'file' })
          const fh = await open(at, WRITE_FLAGS, 0o600)
          try {
            for await (const chunk of entry) await fh.write(chunk as Buffer)
            await fh.chmod(mode & 0o777)
          } finally {
            await fh.close()
          }
          files++
          continue
        }
        case 'symlink': {
          if (!parts.length) throw unsafe(label, `entry ${quoteInput(name)} names the release root as a symlink`)
          if (existing) throw unsafe(label, `entry ${quoteInput(name)} is listed twice`)
          const target = h.linkname ?? ''
          if (!target || target.startsWith('/')) throw unsafe(label, `symlink ${quoteInput(name)} points to ${target ? `the absolute path ${quoteInput(target)}` : 'nothing'}`)
          await parents(parts, name)
          await symlink(target, at)
          nodes.set(key, { kind: 'symlink', target })
          break
        }
        case 'link':
          throw unsafe(label, `entry ${quoteInput(name)} is a hardlink (to ${quoteInput(h.linkname ?? '')})`)
        case 'character-device':
        case 'block-device':
          throw unsafe(label, `entry ${quoteInput(name)} is a device file`)
        case 'fifo':
          throw unsafe(label, `entry ${quoteInput(name)} is a FIFO`)
        default:
          throw unsafe(label, `entry ${quoteInput(name)} is of a type releases do not hold (${h.type})`)
      }
      entry.resume()
    }
    await piping.catch((err: unknown) => {
      if (err instanceof UpdateError) throw err
      throw unsafe(label, `it is not a valid .tar.gz (${(err as Error).message})`)
    })

    const top = [...nodes.keys()].filter((k) => !k.includes('/'))
    const stripped = top.length === 1 && nodes.get(top[0]!)?.kind === 'dir' ? top[0]! : undefined
    const view = stripped ? new Map([...nodes].filter(([k]) => k.startsWith(`${stripped}/`)).map(([k, n]) => [k.slice(stripped.length + 1), n])) : nodes
    for (const [k, n] of view) {
      if (n.kind === 'symlink' && symlinkEscapes(view, k.split('/'))) {
        throw unsafe(label, `symlink ${quoteInput(stripped ? `${stripped}/${k}` : k)} -> ${quoteInput(n.target)} points outside the release`)
      }
    }

    // Deepest first, so a read-only directory is closed only after everything in it exists.
    const dirs = [...nodes].filter((e): e is [string, Node & { kind: 'dir' }] => e[1].kind === 'dir').sort((a, b) => b[0].length - a[0].length)
    for (const [k, n] of dirs) await chmod(path.join(tmp, k), (n.mode ?? 0o755) | 0o700)
    if (stripped) {
      await rename(path.join(tmp, stripped), dest)
      await rmdir(tmp)
    } else {
      await chmod(tmp, 0o755)
      await rename(tmp, dest)
    }
    return { files, bytes, ...(stripped ? { stripped } : {}) }
  } catch (err) {
    source.destroy()
    extract.destroy()
    await rm(tmp, { recursive: true, force: true })
    if (err instanceof UpdateError) throw err
    throw unsafe(label, `it is not a valid .tar.gz (${(err as Error).message})`)
  }
}
