import semver from 'semver'
import { UpdateError } from '../../../updater/shared/errors'
import type { HistoryEntry } from '../../../updater/shared/history'
import type { ReleaseInfo } from '../../../updater/shared/release-cache'
import { compareVersions, isNewer } from '../../../updater/shared/version'
import { currentWindow, formatWallTime, localTimeZone, type MaintenanceWindow, nextWindowStart, parseCalendar, verifyWindow } from './calendar'

/**
 * Which release, if any, may install itself now, and if none, why not: a pure function of the
 * app's policy, its running version, the releases, its update history and the time.
 */

export const POLICY_MODES = ['off', 'notify', 'patch', 'minor', 'all'] as const
/** `off`: nothing; `notify`: announce only; `patch` / `minor` / `all`: install releases up to that semver distance. */
export type PolicyMode = (typeof POLICY_MODES)[number]

export const DEFAULT_MAX_FAILURES = 3

export interface AutoUpdatePolicy {
  mode: PolicyMode
  /** `prerelease` also takes releases like 1.4.0-rc.1. */
  channel: 'stable' | 'prerelease'
  /** When automatic updates may start; absent means at any time. */
  window?: MaintenanceWindow
  /** A release installs itself only this many hours after it was published. */
  minReleaseAgeHours: number
  /** Versions never installed automatically ("1.3.0"; a leading "v" is ignored). */
  skip: string[]
  paused: boolean
  /** ISO time of the last resume: automatic failures before it no longer count toward the circuit breaker. */
  resumedAt?: string
  /** This many automatic failures in a row pause the app's automatic updates. Default 3. */
  maxFailures?: number
}

export const DEFAULT_POLICY: AutoUpdatePolicy = { mode: 'notify', channel: 'stable', minReleaseAgeHours: 24, skip: [], paused: false }

/**
 * An update attempt as the policy reads it from the app's history (`HistoryEntry`).
 * `trigger: 'auto'` marks the attempts the scheduler started; `HistoryEntry.trigger` needs that value.
 */
export type Attempt = Pick<HistoryEntry, 'status' | 'finishedAt'> & {
  kind?: HistoryEntry['kind']
  trigger: HistoryEntry['trigger'] | 'auto'
  to: { version: string; tag?: string }
}

export interface PolicyInput {
  policy: AutoUpdatePolicy
  /** The one switch for all apps. */
  globalPause: boolean
  runningVersion: string
  /** The releases the source knows (any order, any channel). */
  releases: ReleaseInfo[]
  /** The app's update history, any order. */
  history: Attempt[]
  now: Date
  /** Zone of a window calendar that names none. Default: this process's zone. */
  timeZone?: string
}

export type ReasonCode =
  | 'off'
  | 'paused-all'
  | 'paused'
  | 'circuit-breaker'
  | 'up-to-date'
  | 'notify'
  | 'skipped'
  | 'rolled-back-before'
  | 'failed-before'
  | 'policy'
  | 'too-new'
  | 'age-unknown'
  | 'window'
  | 'ready'
  /** The running version is not known (an app Upkeep has not installed a release of yet). */
  | 'version-unknown'
  /** No release list to go by: never checked, or the last check failed. */
  | 'releases-unknown'

export interface Reason {
  code: ReasonCode
  /** For people: "release is 2 h old, minimum 24 h". */
  text: string
}

interface DecisionBase {
  reason: Reason
  /** ISO time the next window opens (when the policy has a window). */
  nextWindowAt?: string
  /** Releases newer than `release` (or than the running version) that will not install themselves, and why. */
  passedOver: { version: string; reason: Reason }[]
}

export type Decision =
  | (DecisionBase & { action: 'install'; release: ReleaseInfo })
  /** Too young or outside the window: `release` installs itself at `notBefore` (or at the next window after it). */
  | (DecisionBase & { action: 'wait'; release: ReleaseInfo; notBefore?: string })
  | (DecisionBase & { action: 'notify-only'; release: ReleaseInfo })
  /** The circuit breaker: the caller persists `paused: true` and sends `auto-paused`. */
  | (DecisionBase & { action: 'pause'; release?: ReleaseInfo; failures: number })
  | (DecisionBase & { action: 'none'; release?: ReleaseInfo })

export type Distance = 'major' | 'minor' | 'patch'

const HOUR = 3_600_000

/** How far `to` is from `from` by major.minor.patch (a `git describe` suffix or a prerelease tag do not count). */
export function releaseDistance(from: string, to: string): Distance {
  const a = semver.coerce(from) ?? new semver.SemVer('0.0.0')
  const b = semver.coerce(to) ?? new semver.SemVer('0.0.0')
  if (a.major !== b.major) return 'major'
  if (a.minor !== b.minor) return 'minor'
  return 'patch'
}

const allows = (mode: PolicyMode, d: Distance): boolean => mode === 'all' || (mode === 'minor' && d !== 'major') || (mode === 'patch' && d === 'patch')

const bare = (v: string) => (v.startsWith('v') ? v.slice(1) : v)

/** Automatic attempts that failed or were rolled back since the last success (or resume), newest first. */
export function consecutiveAutoFailures(history: Attempt[], resumedAt?: string): number {
  const since = resumedAt ? Date.parse(resumedAt) : -Infinity
  const updates = history.filter((e) => (e.kind ?? 'update') === 'update' && Date.parse(e.finishedAt) >= since).sort((x, y) => Date.parse(y.finishedAt) - Date.parse(x.finishedAt))
  let count = 0
  for (const e of updates) {
    if (e.status === 'complete') break
    // A manual attempt that failed says nothing about what the scheduler does: it neither counts nor resets.
    if (e.trigger === 'auto') count++
  }
  return count
}

function blockedBy(r: ReleaseInfo, input: PolicyInput): Reason | undefined {
  const { policy, history, runningVersion } = input
  if (policy.skip.some((s) => bare(s) === r.version)) return { code: 'skipped', text: 'skipped' }
  const tried = history.filter((e) => bare(e.to.version) === r.version && (e.kind ?? 'update') === 'update')
  if (tried.some((e) => e.status === 'rolled_back')) return { code: 'rolled-back-before', text: 'rolled back before' }
  if (tried.some((e) => e.status === 'failed' && e.trigger === 'auto')) return { code: 'failed-before', text: 'failed before' }
  const d = releaseDistance(runningVersion, r.version)
  if (!allows(policy.mode, d)) return { code: 'policy', text: `${policy.mode} policy does not take ${d} release ${r.version}` }
  return undefined
}

function ageProblem(r: ReleaseInfo, input: PolicyInput): { reason: Reason; readyAt?: number } | undefined {
  const min = input.policy.minReleaseAgeHours
  if (min <= 0) return undefined
  const published = Date.parse(r.publishedAt)
  if (!r.publishedAt || Number.isNaN(published)) return { reason: { code: 'age-unknown', text: `release date unknown, minimum age ${min} h` } }
  const ageMs = input.now.getTime() - published
  if (ageMs >= min * HOUR) return undefined
  return { reason: { code: 'too-new', text: `release is ${formatAge(ageMs)} old, minimum ${min} h` }, readyAt: published + min * HOUR }
}

function formatAge(ms: number): string {
  if (ms < HOUR) return `${Math.max(0, Math.floor(ms / 60_000))} min`
  return `${Math.floor(ms / HOUR)} h`
}

/** What the scheduler should do for one app now. */
export function decide(input: PolicyInput): Decision {
  const { policy, now } = input
  const zone = windowZone(policy.window, input.timeZone)
  const nextWindow = policy.window ? nextWindowStart(policy.window, now, { timeZone: zone }) : undefined
  const base = { passedOver: [] as DecisionBase['passedOver'], ...(nextWindow ? { nextWindowAt: nextWindow.toISOString() } : {}) }

  const candidates = input.releases
    .filter((r) => semver.valid(r.version) && (policy.channel === 'prerelease' || !r.prerelease) && isNewer(r.version, input.runningVersion))
    .sort((a, b) => compareVersions(b.version, a.version))
  const latest = candidates[0]
  const withLatest = latest ? { release: latest } : {}
  const maxFailures = policy.maxFailures ?? DEFAULT_MAX_FAILURES
  const failures = consecutiveAutoFailures(input.history, policy.resumedAt)
  const breakerText = `automatic updates paused after ${failures} failures in a row`

  if (policy.mode === 'off') return { action: 'none', ...withLatest, ...base, reason: { code: 'off', text: 'automatic updates are off' } }
  if (input.globalPause) return { action: 'none', ...withLatest, ...base, reason: { code: 'paused-all', text: 'paused for all apps' } }
  if (policy.paused) {
    const byBreaker = failures >= maxFailures
    return { action: 'none', ...withLatest, ...base, reason: byBreaker ? { code: 'circuit-breaker', text: breakerText } : { code: 'paused', text: 'paused' } }
  }
  if (failures >= maxFailures && policy.mode !== 'notify') return { action: 'pause', ...withLatest, ...base, failures, reason: { code: 'circuit-breaker', text: breakerText } }
  if (!latest) return { action: 'none', ...base, reason: { code: 'up-to-date', text: 'up to date' } }
  if (policy.mode === 'notify') return { action: 'notify-only', release: latest, ...base, reason: { code: 'notify', text: `notify only: ${latest.version} is available` } }

  // The highest release the policy takes and that is old enough; newer ones say why they wait.
  const passedOver: DecisionBase['passedOver'] = []
  let waiting: { release: ReleaseInfo; reason: Reason; readyAt?: number } | undefined
  let target: ReleaseInfo | undefined
  for (const r of candidates) {
    const blocked = blockedBy(r, input)
    if (blocked) {
      passedOver.push({ version: r.version, reason: blocked })
      continue
    }
    const young = ageProblem(r, input)
    if (young) {
      passedOver.push({ version: r.version, reason: young.reason })
      waiting ??= { release: r, ...young }
      continue
    }
    target = r
    break
  }

  if (!target) {
    if (waiting) {
      const notBefore = waiting.readyAt !== undefined ? firstWindowFrom(policy.window, waiting.readyAt, zone) : undefined
      return { action: 'wait', release: waiting.release, ...base, passedOver: passedOver.filter((p) => p.version !== waiting.release.version), reason: waiting.reason, ...(notBefore ? { notBefore: new Date(notBefore).toISOString() } : {}) }
    }
    return { action: 'none', release: latest, ...base, passedOver: passedOver.slice(1), reason: passedOver[0]!.reason }
  }

  if (policy.window && !currentWindow(policy.window, now, { timeZone: zone })) {
    const text = nextWindow ? `waiting for window at ${formatWallTime(nextWindow, now, zone)} (${zone})` : `the window ${policy.window.calendar} never opens again`
    return { action: 'wait', release: target, ...base, passedOver, reason: { code: 'window', text }, ...(nextWindow ? { notBefore: nextWindow.toISOString() } : {}) }
  }
  return { action: 'install', release: target, ...base, passedOver, reason: { code: 'ready', text: `installing ${target.version}` } }
}

function windowZone(window: MaintenanceWindow | undefined, fallback?: string): string {
  return (window && parseCalendar(window.calendar).timeZone) ?? fallback ?? localTimeZone()
}

/** `at`, or the start of the first window after it when `at` is outside a window. */
function firstWindowFrom(window: MaintenanceWindow | undefined, at: number, zone: string): number | undefined {
  if (!window || currentWindow(window, new Date(at), { timeZone: zone })) return at
  return nextWindowStart(window, new Date(at), { timeZone: zone })?.getTime()
}

/** A policy from settings or an app definition, checked whole; throws a hinted `BAD_REQUEST`. */
export function parsePolicy(input: unknown): AutoUpdatePolicy {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw bad('the policy must be a JSON object')
  const o = input as Record<string, unknown>
  const known = ['mode', 'channel', 'window', 'minReleaseAgeHours', 'skip', 'paused', 'resumedAt', 'maxFailures']
  const unknown = Object.keys(o).filter((k) => !known.includes(k))
  if (unknown.length) throw bad(`unknown policy field ${unknown.map((k) => JSON.stringify(k)).join(', ')}`, `fields are ${known.join(', ')}`)
  const p: AutoUpdatePolicy = { ...DEFAULT_POLICY, skip: [] }
  if (o.mode !== undefined) {
    if (!POLICY_MODES.includes(o.mode as PolicyMode)) throw bad(`mode must be one of ${POLICY_MODES.join(', ')}`)
    p.mode = o.mode as PolicyMode
  }
  if (o.channel !== undefined) {
    if (o.channel !== 'stable' && o.channel !== 'prerelease') throw bad('channel must be "stable" or "prerelease"')
    p.channel = o.channel
  }
  if (o.window !== undefined && o.window !== null) {
    const w = o.window as Record<string, unknown>
    if (typeof w !== 'object' || typeof w.calendar !== 'string' || typeof w.durationMinutes !== 'number') {
      throw bad('window must be {"calendar": "*-*-* 03:00 Europe/Berlin", "durationMinutes": 120}')
    }
    p.window = verifyWindow({ calendar: w.calendar, durationMinutes: w.durationMinutes })
  }
  if (o.minReleaseAgeHours !== undefined) {
    if (typeof o.minReleaseAgeHours !== 'number' || !(o.minReleaseAgeHours >= 0) || o.minReleaseAgeHours > 24 * 365) throw bad('minReleaseAgeHours must be a number of hours from 0 to 8760')
    p.minReleaseAgeHours = o.minReleaseAgeHours
  }
  if (o.skip !== undefined) {
    if (!Array.isArray(o.skip) || o.skip.some((v) => typeof v !== 'string' || !semver.valid(bare(v)))) throw bad('skip must be a list of versions such as "1.3.0"')
    p.skip = (o.skip as string[]).map(bare)
  }
  if (o.paused !== undefined) {
    if (typeof o.paused !== 'boolean') throw bad('paused must be true or false')
    p.paused = o.paused
  }
  if (o.resumedAt !== undefined) {
    if (typeof o.resumedAt !== 'string' || Number.isNaN(Date.parse(o.resumedAt))) throw bad('resumedAt must be an ISO time')
    p.resumedAt = o.resumedAt
  }
  if (o.maxFailures !== undefined) {
    if (!Number.isInteger(o.maxFailures) || (o.maxFailures as number) < 1) throw bad('maxFailures must be a whole number, at least 1')
    p.maxFailures = o.maxFailures as number
  }
  return p
}

function bad(message: string, hint = 'see "Unattended updates" in the README'): UpdateError {
  return new UpdateError('BAD_REQUEST', message, { hint })
}
