import { constants } from 'node:fs'
import { appendFile, open } from 'node:fs/promises'
import { writeFileAtomic } from './atomic-write'
import { NO_FOLLOW_APPEND, readDataFile } from './data-file'
import { parseJsonLines } from './json-lines'

const NO_FOLLOW_READ_APPEND = constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK
import type { ErrorInfo, Outcome, StepName } from './journal'

/**
 * `data/update-status.jsonl`: what the UI shows of an update, one JSON event per line, written
 * only by the updater and streamed by the server as Server-Sent Events (`GET /api/updates/events`).
 *
 * Contract for consumers (the web UI):
 * - Every event has `id`, a number that only grows, also across updates (a new update continues
 *   after the last id of the previous one). It is the SSE `id:`; a client that reconnects with
 *   `Last-Event-ID: n` receives every event with an id above n.
 * - The file holds the events of the latest update only; it starts with `update-started`.
 * - `type` says what happened:
 *   - `update-started`  {from, to, steps, kind, trigger}: an update (or `upkeep rollback`) began; `steps` is the plan.
 *   - `step-started`    {step}
 *   - `step-finished`   {step, durationMs}
 *   - `step-failed`     {step, durationMs, error}
 *   - `progress`        {step, done, total?, unit}: e.g. bytes backed up.
 *   - `log`             {level, message, step?}: a line for the live log (build output, decisions).
 *   - `finished`        {status: complete | rolled_back | failed, durationMs, error?, backupPath?}: the end.
 * - Lines that do not parse (a torn last line after a power cut) are skipped.
 * Fields may be added; none is renamed.
 */
export type StatusEvent = StatusEventBody & { id: number; updateId: string; at: string }

export type StatusEventBody =
  | {
      type: 'update-started'
      kind: 'update' | 'rollback'
      from: { version: string; tag?: string }
      to: { version: string; tag: string }
      steps: StepName[]
      /** Who asked: `cli` (a person at the command line), `request` (the web UI), `auto` (the scheduler). */
      trigger?: 'cli' | 'request' | 'auto'
    }
  | { type: 'step-started'; step: StepName }
  | { type: 'step-finished'; step: StepName; durationMs: number }
  | { type: 'step-failed'; step: StepName; durationMs: number; error: ErrorInfo }
  | { type: 'progress'; step: StepName; done: number; total?: number; unit: 'bytes' | 'files' | 'percent' }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string; step?: StepName }
  | { type: 'finished'; status: Outcome; durationMs: number; error?: ErrorInfo; backupPath?: string }


export function parseStatusLines(text: string): StatusEvent[] {
  return parseJsonLines(text, (e): e is StatusEvent => typeof (e as StatusEvent)?.id === 'number' && typeof (e as StatusEvent).type === 'string')
}

export async function readStatusEvents(file: string, afterId = 0): Promise<StatusEvent[]> {
  let text: string
  try {
    text = (await readDataFile(file, { maxBytes: 64 << 20 })) ?? ''
  } catch {
    return []
  }
  return parseStatusLines(text).filter((e) => e.id > afterId)
}

/** The updater's side: starts a new file per update (or continues one after a crash), then appends. */
export interface StatusWriter {
  /** Replaces the file with a fresh one for `updateId`; ids continue after the previous file's last. */
  begin(updateId: string): Promise<void>
  /** Continues the file of an update that was interrupted (recovery). */
  resume(updateId: string): Promise<void>
  emit(body: StatusEventBody): Promise<StatusEvent>
}

export function fileStatus(file: string, now: () => Date = () => new Date()): StatusWriter {
  let nextId = 1
  let updateId = ''
  let tail: Promise<unknown> = Promise.resolve()
  const continueAfter = async () => {
    const previous = await readStatusEvents(file)
    nextId = previous.reduce((max, e) => Math.max(max, e.id), 0) + 1
  }
  return {
    async begin(id) {
      await continueAfter()
      updateId = id
      await writeFileAtomic(file, '')
    },
    async resume(id) {
      await continueAfter()
      updateId = id
      // A torn last line would glue onto the next event; end it first.
      const h = await open(file, NO_FOLLOW_READ_APPEND)
      try {
        const { size } = await h.stat()
        if (size > 0) {
          const buf = Buffer.alloc(1)
          await h.read(buf, 0, 1, size - 1)
          if (buf[0] !== 0x0a) await h.write('\n')
        }
      } finally {
        await h.close()
      }
    },
    emit(body) {
      const event = { id: nextId++, updateId, at: now().toISOString(), ...body } as StatusEvent
      // Appends are serialized so lines never interleave; one write(2) per line.
      // Never through a symlink the server put in place of the file (root would append to its target).
      const write = tail.then(() => appendFile(file, JSON.stringify(event) + '\n', { flag: NO_FOLLOW_APPEND }))
      tail = write.catch(() => {})
      return write.then(() => event)
    },
  }
}

export function memoryStatus(): StatusWriter & { events: StatusEvent[] } {
  const events: StatusEvent[] = []
  let nextId = 1
  let updateId = ''
  return {
    events,
    async begin(id) {
      updateId = id
    },
    async resume(id) {
      updateId = id
    },
    async emit(body) {
      const e = { id: nextId++, updateId, at: new Date(0).toISOString(), ...body } as StatusEvent
      events.push(e)
      return e
    },
  }
}
