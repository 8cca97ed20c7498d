import { existsSync } from 'node:fs'
import { execa } from 'execa'
import type { Logger } from 'pino'
import type { UpkeepEvent } from './events'

/**
 * Each event as a journal entry with fields of its own, so `journalctl UPKEEP_EVENT=update-failed`
 * finds them. Node cannot write the journal's datagram socket, so util-linux `logger --journald`
 * does: it reads FIELD=value lines from stdin and sends them as one entry.
 */

/** The MESSAGE_ID of every Upkeep event entry (`journalctl MESSAGE_ID=…`). */
export const UPKEEP_EVENT_MESSAGE_ID = 'fad48a41945b4560ae76fc50e21ae70c'
export const JOURNAL_SOCKET = '/run/systemd/journal/socket'

/** The journal fields of `e`: one line each, so values have no newlines. */
export function journalFields(e: UpkeepEvent): Record<string, string> {
  const important = e.event === 'update-failed' || e.event === 'update-rolled-back' || e.event === 'auto-paused'
  const fields: Record<string, string | undefined> = {
    MESSAGE_ID: UPKEEP_EVENT_MESSAGE_ID,
    MESSAGE: e.message,
    // 4 warning, 6 info (syslog levels).
    PRIORITY: important ? '4' : '6',
    SYSLOG_IDENTIFIER: 'upkeep',
    UPKEEP_EVENT: e.event,
    UPKEEP_EVENT_ID: e.id,
    UPKEEP_APP: e.app,
    UPKEEP_VERSION: e.version.to,
    UPKEEP_FROM_VERSION: e.version.from,
    UPKEEP_UPDATE_ID: e.updateId,
    UPKEEP_STATUS: e.status,
    UPKEEP_TRIGGER: e.trigger,
    UPKEEP_ERROR_CODE: e.error?.code,
    UPKEEP_DETAIL: e.detail,
  }
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(fields)) if (v !== undefined && v !== '') out[k] = v.replace(/[\r\n]+/g, ' ')
  return out
}

/** What `logger --journald` reads on stdin. */
export function journalEntryText(e: UpkeepEvent): string {
  return Object.entries(journalFields(e))
    .map(([k, v]) => `${k}=${v}\n`)
    .join('')
}

/** True where journald listens: under systemd, and so where `logger --journald` can deliver. */
export function journaldAvailable(exists: (p: string) => boolean = existsSync): boolean {
  return exists(JOURNAL_SOCKET)
}

export interface JournalEvents {
  /** Writes the entry in the background, in order; never throws, never waits. */
  emit(e: UpkeepEvent): void
  /** Resolves when every entry so far was handed to logger. */
  idle(): Promise<void>
}

export type WriteEntry = (stdin: string) => Promise<void>

const loggerJournald: WriteEntry = async (stdin) => {
  await execa('logger', ['--journald'], { input: stdin, timeout: 10_000 })
}

/** Journal entries when `enabled` (use `journaldAvailable()`), else nothing at all. */
export function createJournalEvents(opts: { enabled: boolean; log: Logger; write?: WriteEntry }): JournalEvents {
  const write = opts.write ?? loggerJournald
  let chain: Promise<void> = Promise.resolve()
  let warned = false
  return {
    emit(e) {
      if (!opts.enabled) return
      const text = journalEntryText(e)
      chain = chain.then(() =>
        write(text).catch((err: unknown) => {
          // Once: a missing logger would otherwise log for every event.
          if (!warned) opts.log.warn({ err }, 'cannot write events to the journal (logger --journald)')
          warned = true
        }),
      )
    },
    idle: () => chain,
  }
}
