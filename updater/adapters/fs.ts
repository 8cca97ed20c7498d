import { lstat, readdir, readFile, readlink, rename, rm, statfs, stat, symlink } from 'node:fs/promises'
import path from 'node:path'
import { fsyncDir } from '../shared/atomic-write'
import type { RunAs } from './exec'

/** Owner of `dir` with their name and home from /etc/passwd. */
export async function ownerOf(dir: string): Promise<RunAs> {
  const s = await stat(dir)
  return { ...(await userById(s.uid)), uid: s.uid, gid: s.gid }
}

/** A passwd entry by uid (name and home); numeric when there is none. */
export async function userById(uid: number): Promise<RunAs> {
  for (const f of await passwd()) if (Number(f[2]) === uid) return { uid, gid: Number(f[3]), name: f[0]!, home: f[5] ?? '' }
  return { uid, gid: uid, name: String(uid), home: '' }
}

/** A passwd entry by name; undefined when there is no such user. */
export async function userByName(name: string): Promise<RunAs | undefined> {
  for (const f of await passwd()) if (f[0] === name) return { uid: Number(f[2]), gid: Number(f[3]), name, home: f[5] ?? '' }
  return undefined
}

async function passwd(): Promise<string[][]> {
  try {
    return (await readFile('/etc/passwd', 'utf8')).split('\n').map((l) => l.split(':')).filter((f) => f.length >= 7)
  } catch {
    return []
  }
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
export async function swapSymlink(link: string, target: string): Promise<void> {
  const dir = path.dirname(link)
  const tmp = `${link}.tmp`
  await rm(tmp, { force: true })
  await symlink(path.relative(dir, target), tmp)
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
