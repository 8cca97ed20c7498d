import { pino, type Logger } from 'pino'
import pretty from 'pino-pretty'
import type { LogLevel } from './config'

export type { Logger }

export interface LoggerOptions {
  level: LogLevel
  name?: string
  /** Pretty, colored lines for a person at a terminal; JSON for journald and files. Default: stdout is a TTY. */
  pretty?: boolean
  /** Where to write; default stdout (fd 1). */
  fd?: number
}

/**
 * JSON lines to stdout, written synchronously: the updater restarts the very service it
 * runs beside, and its last line before a crash must not sit in a buffer.
 */
export function createLogger(opts: LoggerOptions): Logger {
  const fd = opts.fd ?? 1
  const isPretty = opts.pretty ?? (fd === 1 && process.stdout.isTTY === true)
  const stream = isPretty
    ? pretty({ sync: true, destination: fd, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' })
    : pino.destination({ fd, sync: true })
  return pino({ level: opts.level, name: opts.name, base: { pid: process.pid } }, stream)
}

/** A logger that drops everything, for tests and for `--json` CLI output. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
