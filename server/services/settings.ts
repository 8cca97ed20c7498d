import { rename } from 'node:fs/promises'
import { writeJsonAtomic, type AtomicWriteOptions } from '../../updater/shared/atomic-write'
import { readDataFile } from '../../updater/shared/data-file'
import { UpdateError, writeFailed } from '../../updater/shared/errors'
import type { Logger } from '../../updater/shared/log'
import { parseRepoInput } from '../../updater/shared/repo'
import { APP_NAME_RE } from '../../updater/shared/apps/definition'
import { DEFAULT_POLICY, parsePolicy, type AutoUpdatePolicy } from './auto-update/policy'
import { verifyEndpoint, type WebhookEndpoint } from './auto-update/presets'

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

/** One app's unattended updates: which releases install themselves and when, and who is told. */
export interface AppAutoSettings {
  policy: AutoUpdatePolicy
  /** Secrets and tokens in here never leave the server (the API answers without them). */
  webhooks: WebhookEndpoint[]
}

/** `paused` and `apps` in `data/settings.json`: the one switch for all apps, and each app's own. */
export interface AutoUpdateSettings {
  paused: boolean
  apps: Record<string, AppAutoSettings>
}

/** An app's settings before anything was saved for it: notify only, no webhooks. */
export function defaultAppAutoSettings(): AppAutoSettings {
  return { policy: { ...DEFAULT_POLICY, skip: [] }, webhooks: [] }
}

export interface AutoUpdateStore {
  readAuto(): Promise<AutoUpdateSettings>
  /** Applies `change` to what is stored, one writer at a time; returns the settings after. */
  updateAuto(change: (s: AutoUpdateSettings) => AutoUpdateSettings): Promise<AutoUpdateSettings>
}

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
export function fileSettings(file: string, opts: { log: Logger; write?: AtomicWriteOptions }): SettingsStore & AutoUpdateStore {
  // Webhook secrets and tokens live here: readable by the server's user only.
  const writeOpts: AtomicWriteOptions = { ...opts.write, mode: 0o600 }
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

  /** The stored unattended-update settings; an app entry that does not validate falls back to the defaults (and says so). */
  function normalizeAuto(raw: Record<string, unknown>): AutoUpdateSettings {
    const apps: Record<string, AppAutoSettings> = {}
    const stored = typeof raw.apps === 'object' && raw.apps !== null && !Array.isArray(raw.apps) ? (raw.apps as Record<string, unknown>) : {}
    for (const [name, v] of Object.entries(stored)) {
      if (!APP_NAME_RE.test(name) || typeof v !== 'object' || v === null) continue
      const entry = v as { policy?: unknown; webhooks?: unknown }
      const app = defaultAppAutoSettings()
      try {
        if (entry.policy !== undefined) app.policy = parsePolicy(entry.policy)
      } catch (err) {
        opts.log.warn({ file, app: name, err: (err as Error).message }, 'stored update policy is not valid; using the default')
      }
      for (const w of Array.isArray(entry.webhooks) ? entry.webhooks : []) {
        try {
          app.webhooks.push(verifyEndpoint(w))
        } catch (err) {
          opts.log.warn({ file, app: name, err: (err as Error).message }, 'stored webhook is not valid; ignored')
        }
      }
      apps[name] = app
    }
    return { paused: raw.paused === true, apps }
  }

  /** One writer at a time, so two saves in a row cannot lose one another's change. */
  function write<T>(change: (raw: Record<string, unknown>) => { next: Record<string, unknown>; result: T }): Promise<T> {
    const run = queue.then(async () => {
      const { raw, corrupt } = await load()
      const { next, result } = change(raw)
      // Keep an unreadable file for the operator instead of silently replacing it.
      try {
        if (corrupt) await rename(file, `${file}.bad`)
        await writeJsonAtomic(file, next, writeOpts)
      } catch (err) {
        throw writeFailed('the settings', err)
      }
      return result
    })
    queue = run.catch(() => {})
    return run
  }

  return {
    async read() {
      return normalize((await load()).raw)
    },
    update(patch) {
      return write((raw) => {
        const before = normalize(raw)
        const after = { ...before, ...patch }
        return { next: { ...raw, ...after }, result: { before, after } }
      })
    },
    async readAuto() {
      return normalizeAuto((await load()).raw)
    },
    updateAuto(change) {
      return write((raw) => {
        const after = change(normalizeAuto(raw))
        return { next: { ...raw, paused: after.paused, apps: after.apps }, result: after }
      })
    },
  }
}
