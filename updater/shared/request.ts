import { randomBytes } from 'node:crypto'
import { link, open, rm, rmdir } from 'node:fs/promises'
import path from 'node:path'
import { fsyncDir } from './atomic-write'
import { readDataFile } from './data-file'
import { UpdateError } from './errors'
import { isReleaseTag } from './version'

/**
 * `data/update-request.json`: "please update", written by the server (an internet-facing
 * process) and taken by `upkeep apply-request`, which deletes it. Everything in it is
 * validated strictly before use and never reaches a shell.
 */
export interface UpdateRequest {
  updateId: string
  /** Release tag (`v1.4.0`); absent means the latest release. */
  version?: string
  backup: boolean
  requestedAt: string
  /** `auto`: the server's scheduler asked (history records `trigger: 'auto'`); absent: a person did. */
  trigger?: 'auto'
}

const UPDATE_ID_RE = /^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$/
/** Requests are tiny; anything bigger is not one of ours. */
export const MAX_REQUEST_BYTES = 4096

/** `20261123T182800Z-a1b2c3d4`: sortable by time, unique enough to name one update. */
export function newUpdateId(now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
  return `${stamp}-${randomBytes(4).toString('hex')}`
}

export function isUpdateId(id: unknown): id is string {
  return typeof id === 'string' && UPDATE_ID_RE.test(id)
}

/** Validates a parsed request; throws BAD_REQUEST naming every problem. */
export function parseUpdateRequest(value: unknown): UpdateRequest {
  const problems: string[] = []
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UpdateError('BAD_REQUEST', 'update request is not a JSON object')
  }
  const v = value as Record<string, unknown>
  for (const key of Object.keys(v)) {
    if (!['updateId', 'version', 'backup', 'requestedAt', 'trigger'].includes(key)) problems.push(`unknown field "${key.slice(0, 40)}"`)
  }
  if (!isUpdateId(v.updateId)) problems.push('updateId is missing or malformed')
  if (v.version !== undefined && (typeof v.version !== 'string' || !isReleaseTag(v.version))) {
    problems.push('version must be a release tag such as v1.2.3')
  }
  if (typeof v.backup !== 'boolean') problems.push('backup must be true or false')
  if (typeof v.requestedAt !== 'string' || Number.isNaN(Date.parse(v.requestedAt))) problems.push('requestedAt must be an ISO time')
  if (v.trigger !== undefined && v.trigger !== 'auto') problems.push('trigger must be "auto" when present')
  if (problems.length) throw new UpdateError('BAD_REQUEST', `invalid update request: ${problems.join('; ')}`)
  return {
    updateId: v.updateId as string,
    ...(v.version !== undefined ? { version: v.version as string } : {}),
    backup: v.backup as boolean,
    requestedAt: v.requestedAt as string,
    ...(v.trigger === 'auto' ? { trigger: 'auto' as const } : {}),
  }
}

/**
 * Writes the request only if none is pending: temp file, fsync, then link(2), which fails with
 * EEXIST instead of replacing (rename would overwrite a request the updater has not taken yet).
 * Returns false when a request is already there.
 */
export async function writeUpdateRequest(file: string, request: UpdateRequest): Promise<boolean> {
  const dir = path.dirname(file)
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  const h = await open(tmp, 'wx', 0o644)
  try {
    await h.writeFile(JSON.stringify(request) + '\n')
    await h.sync()
  } finally {
    await h.close()
  }
  try {
    await link(tmp, file)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw err
  } finally {
    await rm(tmp, { force: true })
    await fsyncDir(dir)
  }
}

export type TakenRequest = { ok: true; request: UpdateRequest } | { ok: false; error: UpdateError } | undefined

/**
 * Reads and deletes the pending request; undefined when there is none. The server can plant
 * anything at this path, so a symlink is not followed, a FIFO not waited on, and only a small
 * regular file is read; whatever was there is removed.
 */
export async function takeUpdateRequest(file: string): Promise<TakenRequest> {
  let raw: string | undefined
  let refused: Error | undefined
  try {
    raw = await readDataFile(file, { maxBytes: MAX_REQUEST_BYTES })
  } catch (err) {
    refused = err as Error
  }
  if (raw === undefined && !refused) return undefined
  await removeEntry(file)
  await fsyncDir(path.dirname(file))
  if (refused) return { ok: false, error: new UpdateError('BAD_REQUEST', `update request refused: ${refused.message}`) }
  try {
    return { ok: true, request: parseUpdateRequest(JSON.parse(raw!)) }
  } catch (err) {
    if (err instanceof UpdateError) return { ok: false, error: err }
    return { ok: false, error: new UpdateError('BAD_REQUEST', 'update request is not valid JSON') }
  }
}

/** Unlinks whatever is at `file`; a directory only when empty (root never walks a tree the server controls). */
async function removeEntry(file: string): Promise<void> {
  await rm(file, { force: true }).catch(() => rmdir(file))
}
