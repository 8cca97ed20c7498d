import { writeSync } from 'node:fs'
import { pino, type Logger } from 'pino'
import type { LogLevel } from './config'

export type { Logger }

export interface LoggerOptions {
  level: LogLevel
  name?: string
  /** Short readable lines for a person at a terminal; JSON for journald and files. Default: stdout is a TTY. */
  pretty?: boolean
  /** Where to write; default stdout (fd 1). */
  fd?: number
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' }
const OMIT = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg'])

/** One pino JSON line as a person reads it: `12:03:04.567 INFO  listening url=http://…`. Pure. */
export function readableLine(json: string): string {
  let e: Record<string, unknown>
  try {
    e = JSON.parse(json) as Record<string, unknown>
  } catch {
    return json
  }
  const t = new Date(typeof e.time === 'number' ? e.time : Date.now())
  const time = `${String(t.getHours()).padStart(2, '0')}:${String(t.getMinutes()).padStart(2, '0')}:${String(t.getSeconds()).padStart(2, '0')}.${String(t.getMilliseconds()).padStart(3, '0')}`
  const fields = Object.entries(e)
    .filter(([k]) => !OMIT.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
  return `${time} ${(LEVELS[Number(e.level)] ?? String(e.level)).padEnd(5)} ${String(e.msg ?? '')}${fields.length ? ` ${fields.join(' ')}` : ''}\n`
}

/**
 * JSON lines to stdout, written synchronously: the updater restarts the very service it
 * runs beside, and its last line before a crash must not sit in a buffer. On a terminal the same
 * lines, readable (no dependency for it: the server bundle stays small).
 */
export function createLogger(opts: LoggerOptions): Logger {
  const fd = opts.fd ?? 1
  const isPretty = opts.pretty ?? (fd === 1 && process.stdout.isTTY === true)
  const stream = isPretty ? { write: (line: string) => void writeSync(fd, readableLine(line)) } : pino.destination({ fd, sync: true })
  return pino({ level: opts.level, name: opts.name, base: { pid: process.pid } }, stream)
}

/** A logger that drops everything, for tests and for `--json` CLI output. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
