import { randomUUID } from 'node:crypto'

/** What Upkeep tells webhooks and the journal about. Persisted and sent: add names, never rename. */
export const EVENT_NAMES = ['update-available', 'update-started', 'update-completed', 'update-failed', 'update-rolled-back', 'auto-paused', 'test'] as const
export type EventName = (typeof EVENT_NAMES)[number]

export type EventStatus = 'available' | 'running' | 'complete' | 'failed' | 'rolled_back' | 'paused' | 'test'

const STATUS: Record<EventName, EventStatus> = {
  'update-available': 'available',
  'update-started': 'running',
  'update-completed': 'complete',
  'update-failed': 'failed',
  'update-rolled-back': 'rolled_back',
  'auto-paused': 'paused',
  test: 'test',
}

/**
 * One event, as the `json` webhook preset sends it (README "Notifications"). Fields may be added;
 * none is renamed.
 */
export interface UpkeepEvent {
  schema: 1
  /** Unique per event; a retried or re-sent delivery keeps it, so receivers can drop duplicates. */
  id: string
  event: EventName
  app: string
  /** The update this event belongs to, when there is one. */
  updateId?: string
  version: { from?: string; to?: string }
  status: EventStatus
  /** `auto` when the scheduler started the update, `manual` for a person (web UI or CLI). */
  trigger?: 'auto' | 'manual'
  error?: { code: string; message: string }
  /** Extra words for people, e.g. "during soak". */
  detail?: string
  /** ISO time the event happened. */
  at: string
  /** Where to look: the app's page in Upkeep's web UI, when its address is known. */
  url?: string
  /** One line for people. */
  message: string
}

export interface EventInput {
  /** A fixed id for an event that may be produced twice (from the history after a restart); default random. */
  id?: string
  event: EventName
  app: string
  updateId?: string
  version?: { from?: string; to?: string }
  trigger?: 'auto' | 'manual'
  error?: { code: string; message: string }
  detail?: string
  url?: string
}

/** A complete event from what happened; `now` and the id come in so tests can fix them. */
export function createEvent(input: EventInput, now: Date, id: string = input.id ?? randomUUID()): UpkeepEvent {
  const e: UpkeepEvent = {
    schema: 1,
    id,
    event: input.event,
    app: input.app,
    ...(input.updateId ? { updateId: input.updateId } : {}),
    version: { ...input.version },
    status: STATUS[input.event],
    ...(input.trigger ? { trigger: input.trigger } : {}),
    ...(input.error ? { error: { code: input.error.code, message: input.error.message } } : {}),
    ...(input.detail ? { detail: input.detail } : {}),
    at: now.toISOString(),
    ...(input.url ? { url: input.url } : {}),
    message: '',
  }
  e.message = describeEvent(e).message
  return e
}

/** A title and one line for chat and push services, and whether it deserves attention. */
export function describeEvent(e: Omit<UpkeepEvent, 'message'>): { title: string; message: string; important: boolean } {
  const from = e.version.from
  const to = e.version.to
  const err = e.error ? `: ${e.error.code} ${e.error.message}` : ''
  const detail = e.detail ? ` (${e.detail})` : ''
  switch (e.event) {
    case 'update-available':
      return { title: `${e.app} ${to} is available`, message: `${e.app} ${to} is available${from ? ` (running ${from})` : ''}${detail}`, important: false }
    case 'update-started':
      return { title: `${e.app}: updating to ${to}`, message: `${e.app}: updating ${from ?? '?'} → ${to}${e.trigger === 'auto' ? ' (automatic)' : ''}${detail}`, important: false }
    case 'update-completed':
      return { title: `${e.app} updated to ${to}`, message: `${e.app} updated ${from ?? '?'} → ${to}${detail}`, important: false }
    case 'update-failed':
      return { title: `${e.app}: update to ${to} failed`, message: `${e.app}: update ${from ?? '?'} → ${to} failed${detail}${err}`, important: true }
    case 'update-rolled-back':
      return { title: `${e.app}: ${to} rolled back`, message: `${e.app}: ${to} was rolled back to ${from ?? 'the previous version'}${detail}${err}`, important: true }
    case 'auto-paused':
      return { title: `${e.app}: automatic updates paused`, message: `${e.app}: ${e.detail ?? 'automatic updates paused'}`, important: true }
    case 'test':
      return { title: 'Upkeep test notification', message: `Test notification from Upkeep for ${e.app}`, important: false }
  }
}
