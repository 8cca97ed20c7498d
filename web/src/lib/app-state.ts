import type { AppSummary, UpdatesStatus } from '../api'
import { blamesRelease } from './last-failure'
import { pendingUpdate } from './pending-update'
import type { RunView } from './update-progress'

// What the apps list and the banner say about each app, from its status, its last update and
// the run this page follows. Pure, so the wording is tested with tables.

export const UPKEEP = 'upkeep'

/** How an app is named on screen: Upkeep by its product name, another app by its definition's name. */
export function appLabel(name: string): string {
  return name === UPKEEP ? 'Upkeep' : name
}

type LastRun = NonNullable<AppSummary['lastRun']>

/** The release whose install failed last by its own fault, from the apps list's last run of an app. */
export function failedVersionOfLastRun(last: LastRun | null | undefined): string | undefined {
  if (!last || last.status === 'complete' || !last.to.version) return undefined
  return blamesRelease({ status: last.status, failedStep: last.error?.step }) ? last.to.version : undefined
}

/** An app's newer release the banner may offer. */
export interface Offer {
  app: string
  label: string
  version: string
  current: string
}

export interface OfferInput {
  name: string
  status: UpdatesStatus | undefined
  /** A release that failed to install last: not offered as "available" again. */
  failedVersion: string | undefined
  /** A run of this app is shown (running, requested, just ended): the banner tells that instead. */
  busy: boolean
}

/** The updates to announce, in the apps' order: newer, not the one that failed, not dismissed for that version. */
export function offeredUpdates(apps: readonly OfferInput[], isDismissed: (app: string, version: string) => boolean): Offer[] {
  const out: Offer[] = []
  for (const a of apps) {
    const latest = a.status?.updateAvailable ? a.status.latest : null
    if (!latest || a.busy || latest.version === a.failedVersion || isDismissed(a.name, latest.version)) continue
    out.push({ app: a.name, label: appLabel(a.name), version: latest.version, current: a.status!.current.version })
  }
  return out
}

/** The banner's headline for what it offers: one app's release by name, several by their count. */
export function offersTitle(offers: readonly Offer[]): string {
  if (offers.length === 1) return `${offers[0]!.label} ${offers[0]!.version} is available`
  return `${offers.length} updates available`
}

/** "Upkeep 1.2.0, notes 3.1.0": what the offers are, in one line. */
export function offersList(offers: readonly Offer[]): string {
  return offers.map((o) => `${o.label} ${o.version}`).join(', ')
}

export type AppStateKind = 'broken' | 'loading' | 'running' | 'requested' | 'interrupted' | 'available' | 'failed-release' | 'up-to-date' | 'unknown' | 'checks-off'

/** An app's state in a word or two, for the apps list. */
export function appStateOf(summary: Pick<AppSummary, 'error'> | undefined, status: UpdatesStatus | undefined, run: RunView | undefined, failedVersion: string | undefined): { kind: AppStateKind; text: string } {
  if (summary?.error) return { kind: 'broken', text: 'Broken definition' }
  if (!status) return { kind: 'loading', text: 'Loading…' }
  if (run?.status === 'running') return { kind: 'running', text: `Updating to ${run.to}` }
  const pending = pendingUpdate(status.running, run)
  if (pending) return { kind: pending.state === 'running' ? 'running' : 'requested', text: pending.to ? `Updating to ${pending.to}` : 'Updating' }
  if (status.running?.state === 'interrupted') return { kind: 'interrupted', text: 'An update stopped before it finished' }
  const latest = status.updateAvailable ? status.latest : null
  if (latest && latest.version === failedVersion) return { kind: 'failed-release', text: `${latest.version} failed to install` }
  if (latest) return { kind: 'available', text: `Update available: ${latest.version}` }
  if (status.checksDisabled) return { kind: 'checks-off', text: 'Checks are disabled' }
  return isUpToDate(status) ? { kind: 'up-to-date', text: 'Up to date' } : { kind: 'unknown', text: 'Not known' }
}

/**
 * "Up to date" is said only from a complete answer: GitHub's release list, or the tags of the git
 * remote an app's definition names as its source (for Upkeep, tags are GitHub's fallback: not complete).
 */
export function isUpToDate(status: UpdatesStatus): boolean {
  const checkError = status.error !== null && status.error.code !== 'RATE_LIMITED'
  const complete = status.via === 'api' || (status.via === 'git' && status.source?.from === 'definition')
  return !status.updateAvailable && !status.checksDisabled && status.source !== null && status.checkedAt !== null && complete && !checkError
}

const LAST_RUN_TEXT: Record<string, string> = { complete: 'Updated', rolled_back: 'Rolled back', failed: 'Failed' }

/** How the last update of an app ended, in words: "Updated 1.0.0 → 1.1.0", "Rolled back 1.1.0 → 1.2.0". */
export function lastRunText(last: LastRun | null | undefined): string {
  if (!last) return 'No updates yet'
  return `${LAST_RUN_TEXT[last.status] ?? last.status} ${last.from.version || '?'} → ${last.to.version || '?'}`
}
