import { lchown, lstat, mkdir, readdir, readFile, readlink, rename, rm, statfs, stat, symlink, chown } from 'node:fs/promises'
import path from 'node:path'
import { fsyncDir } from '../shared/atomic-write'
import type { RunAs } from './exec'

/** Owner of `dir` with their name and home from /etc/passwd. */
export async function ownerOf(dir: string): Promise<RunAs> {
  const s = await stat(dir)
  let name = String(s.uid)
  let home = ''
  try {
    for (const line of (await readFile('/etc/passwd', 'utf8')).split('\n')) {
      const f = line.split(':')
      if (Number(f[2]) === s.uid) {
        name = f[0]!
        home = f[5] ?? ''
        break
      }
    }
  } catch {
    /* no passwd: numeric ids only */
  }
  return { uid: s.uid, gid: s.gid, name, home }
}

export function isRoot(): boolean {
  return process.getuid?.() === 0
}

export async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir)
  return s.bavail * s.bsize
}

/** Bytes of regular files under `dir` (symlinks not followed). */
export async function dirSize(dir: string): Promise<number> {
  let total = 0
  let entries
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true })
  } catch {
    return 0
  }
  for (const e of entries) {
    if (!e.isFile()) continue
    try {
      total += (await lstat(path.join(e.parentPath, e.name))).size
    } catch {
      /* vanished */
    }
  }
  return total
}

/** Creates `dir` (and parents) owned by `owner` when running as root. */
export async function mkdirOwned(dir: string, owner: RunAs | undefined): Promise<void> {
  await mkdir(dir, { recursive: true })
  if (owner && isRoot()) await chown(dir, owner.uid, owner.gid)
}

/** Where the symlink `link` points, resolved to an absolute path; undefined when it is not a symlink. */
export async function readLinkTarget(link: string): Promise<string | undefined> {
  try {
    return path.resolve(path.dirname(link), await readlink(link))
  } catch {
    return undefined
  }
}

/**
 * Points the symlink `link` at `target` with one rename(2): a reader sees the old or the new
 * link, never none. The link is relative, so the checkout can move.
 */
export async function swapSymlink(link: string, target: string, owner?: RunAs): Promise<void> {
  const dir = path.dirname(link)
  const tmp = `${link}.tmp`
  await rm(tmp, { force: true })
  await symlink(path.relative(dir, target), tmp)
  if (owner && isRoot()) await lchown(tmp, owner.uid, owner.gid)
  await rename(tmp, link)
  await fsyncDir(dir)
}

export async function removeLink(link: string): Promise<void> {
  await rm(link, { force: true })
  await fsyncDir(path.dirname(link))
}

/**
 * Up to `limit` paths under `root` not owned by `uid` (a `sudo git pull` leaves root-owned files
 * that git, run as the owner, then cannot replace). `skip` names top-level entries not to walk.
 */
export async function foreignOwned(root: string, uid: number, skip: string[], limit = 5): Promise<string[]> {
  const found: string[] = []
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (found.length >= limit) return
    let entries
    try {
      entries = await readdir(dir, { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries) {
      if (found.length >= limit) return
      if (depth === 0 && skip.includes(e.name)) continue
      const p = path.join(dir, e.name)
      const s = await lstat(p).catch(() => undefined)
      if (!s) continue
      if (s.uid !== uid) found.push(path.relative(root, p))
      if (e.isDirectory()) await walk(p, depth + 1)
    }
  }
  const top = await lstat(root)
  if (top.uid !== uid) found.push('.')
  await walk(root, 0)
  return found
}
