import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { readFile, rm } from 'node:fs/promises'
import { writeJsonAtomic } from './atomic-write'

/**
 * `data/server.pid`: the server process the `process` service manager controls. Written by the
 * updater when it starts the server and by the server itself once it listens (so an `npm start`ed
 * server can be restarted too). `start` is the process start time from /proc, so a recycled pid
 * is never mistaken for the server.
 */
export interface PidFile {
  pid: number
  start: number | undefined
  startedAt: string
}

/** The kernel's start time of `pid` (clock ticks since boot), or undefined when it is not running. */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Field 2 (comm) may contain spaces and parentheses; fields after the last ')' are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // A zombie has exited; only its parent has not reaped it yet. But a zombie main thread may
    // still have threads exiting (exit_group), which hold its files open, a listening socket
    // among them: the process is gone when they are.
    if ((fields[0] === 'Z' || fields[0] === 'X') && !hasOtherThreads(pid)) return undefined
    const start = Number(fields[19])
    return Number.isFinite(start) ? start : undefined
  } catch {
    return undefined
  }
}

function hasOtherThreads(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/task`).some((tid) => tid !== String(pid))
  } catch {
    return false
  }
}

/** True when `pid` runs and, if `start` is known, is the very process that was recorded. */
export function isProcessAlive(pid: number, start?: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  const now = processStartTime(pid)
  // A zombie has no useful /proc entry for us; treat "no stat" as gone only where /proc exists.
  if (start === undefined || now === undefined) return now !== undefined || !hasProc()
  return now === start
}

let procChecked: boolean | undefined
function hasProc(): boolean {
  if (procChecked === undefined) procChecked = processStartTime(process.pid) !== undefined
  return procChecked
}

export async function readPidFile(file: string): Promise<PidFile | undefined> {
  try {
    const v = JSON.parse(await readFile(file, 'utf8')) as Partial<PidFile>
    if (typeof v.pid !== 'number' || !Number.isInteger(v.pid) || v.pid <= 0) return undefined
    return { pid: v.pid, start: typeof v.start === 'number' ? v.start : undefined, startedAt: String(v.startedAt ?? '') }
  } catch {
    return undefined
  }
}

export async function writePidFile(file: string, pid: number): Promise<PidFile> {
  const entry: PidFile = { pid, start: processStartTime(pid), startedAt: new Date().toISOString() }
  await writeJsonAtomic(file, entry)
  return entry
}

/** Removes the pidfile only when it still names `pid` (a newer server may have replaced it). */
export async function removePidFileIfOurs(file: string, pid: number): Promise<void> {
  const current = await readPidFile(file)
  if (current?.pid === pid) await rm(file, { force: true })
}

/** For `process.on('exit')`, where only synchronous work runs. */
export function removePidFileIfOursSync(file: string, pid: number): void {
  try {
    const current = JSON.parse(readFileSync(file, 'utf8')) as { pid?: number }
    if (current.pid === pid) rmSync(file, { force: true })
  } catch {
    /* gone or unreadable: nothing of ours to remove */
  }
}
