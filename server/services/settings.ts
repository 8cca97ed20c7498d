import { rename } from 'node:fs/promises'
import { writeJsonAtomic, type AtomicWriteOptions } from '../../updater/shared/atomic-write'
import { readDataFile } from '../../updater/shared/data-file'
import { UpdateError, writeFailed } from '../../updater/shared/errors'
import type { Logger } from '../../updater/shared/log'
import { parseRepoInput } from '../../updater/shared/repo'

export type Channel = 'stable' | 'prerelease'
export const CHANNELS: readonly Channel[] = ['stable', 'prerelease']

/** What an admin can change in Settings → Software Updates; stored in `data/settings.json`. */
export interface Settings {
  /** `owner/name`, or null to fall back to the checkout's origin. `UPDATE_REPO` beats it. */
  updateRepo: string | null
  /** `prerelease` also offers releases marked prerelease and tags like v1.2.0-rc.1. */
  channel: Channel
  /** false: no automatic checks; "Check for updates" still asks GitHub. */
  checkEnabled: boolean
}

export type SettingsPatch = Partial<Settings>

export const DEFAULT_SETTINGS: Settings = { updateRepo: null, channel: 'stable', checkEnabled: true }

export interface SettingsStore {
  read(): Promise<Settings>
  /** Applies a validated patch and returns the settings before and after. */
  update(patch: SettingsPatch): Promise<{ before: Settings; after: Settings }>
}

const KEYS = Object.keys(DEFAULT_SETTINGS) as (keyof Settings)[]
/** Settings are a few short fields; room for what later versions add. */
const MAX_SETTINGS_BYTES = 64 * 1024

/**
 * Validates a `PUT /api/settings` body: known keys only, `updateRepo` as owner/name or a
 * clone URL of `repoHosts` (stored normalized), `null` or "" to clear it. Throws `BAD_REQUEST`/`BAD_REPO`.
 */
export function parseSettingsPatch(body: unknown, repoHosts: readonly string[]): SettingsPatch {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new UpdateError('BAD_REQUEST', 'settings must be a JSON object', { hint: `send any of ${KEYS.join(', ')}` })
  }
  const unknown = Object.keys(body).filter((k) => !(KEYS as string[]).includes(k))
  if (unknown.length) {
    throw new UpdateError('BAD_REQUEST', `unknown setting ${unknown.map((k) => JSON.stringify(k)).join(', ')}`, { hint: `settings are ${KEYS.join(', ')}` })
  }
  const b = body as Record<string, unknown>
  const patch: SettingsPatch = {}
  if ('updateRepo' in b) {
    const v = b.updateRepo
    if (v === null || v === '') patch.updateRepo = null
    else if (typeof v === 'string') patch.updateRepo = parseRepoInput(v, repoHosts, 'updateRepo')
    else throw new UpdateError('BAD_REQUEST', 'updateRepo must be a string such as "acme/widget", or null')
  }
  if ('channel' in b) {
    if (!CHANNELS.includes(b.channel as Channel)) {
      throw new UpdateError('BAD_REQUEST', `channel must be one of ${CHANNELS.join(', ')}, got ${JSON.stringify(b.channel)}`)
    }
    patch.channel = b.channel as Channel
  }
  if ('checkEnabled' in b) {
    if (typeof b.checkEnabled !== 'boolean') throw new UpdateError('BAD_REQUEST', `checkEnabled must be true or false, got ${JSON.stringify(b.checkEnabled)}`)
    patch.checkEnabled = b.checkEnabled
  }
  return patch
}

/**
 * Settings in a JSON file, written atomically. Keys this version does not know are kept, so
 * settings.json can grow without a newer version's settings being lost on a rollback.
 * A stored `updateRepo` is returned as stored: the repo resolver validates it on use.
 */
export function fileSettings(file: string, opts: { log: Logger; write?: AtomicWriteOptions }): SettingsStore {
  let queue: Promise<unknown> = Promise.resolve()

  async function load(): Promise<{ raw: Record<string, unknown>; corrupt: boolean }> {
    let text: string | undefined
    try {
      text = await readDataFile(file, { maxBytes: MAX_SETTINGS_BYTES })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== undefined) throw err // EACCES, EIO: not the file's fault
      // A symlink, FIFO or huge file planted there: as unusable as bad JSON, and never waited on.
      opts.log.warn({ file, err: (err as Error).message }, 'settings file refused; using defaults')
      return { raw: {}, corrupt: true }
    }
    if (text === undefined) return { raw: {}, corrupt: false }
    try {
      const raw = JSON.parse(text) as unknown
      if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) return { raw: raw as Record<string, unknown>, corrupt: false }
    } catch {
      // fall through
    }
    opts.log.warn({ file }, 'settings file is not a JSON object; using defaults')
    return { raw: {}, corrupt: true }
  }

  function normalize(raw: Record<string, unknown>): Settings {
    return {
      updateRepo: typeof raw.updateRepo === 'string' && raw.updateRepo ? raw.updateRepo : null,
      channel: CHANNELS.includes(raw.channel as Channel) ? (raw.channel as Channel) : DEFAULT_SETTINGS.channel,
      checkEnabled: typeof raw.checkEnabled === 'boolean' ? raw.checkEnabled : DEFAULT_SETTINGS.checkEnabled,
    }
  }

  return {
    async read() {
      return normalize((await load()).raw)
    },
    update(patch) {
      // One writer at a time, so two saves in a row cannot lose one another's change.
      const run = queue.then(async () => {
        const { raw, corrupt } = await load()
        const before = normalize(raw)
        const after = { ...before, ...patch }
        // Keep an unreadable file for the operator instead of silently replacing it.
        try {
          if (corrupt) await rename(file, `${file}.bad`)
          await writeJsonAtomic(file, { ...raw, ...after }, opts.write)
        } catch (err) {
          throw writeFailed('the settings', err)
        }
        return { before, after }
      })
      queue = run.catch(() => {})
      return run
    },
  }
}
