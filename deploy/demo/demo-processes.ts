import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { processStartTime } from '../../updater/shared/pidfile'

// The demo's processes are not all its children: Upkeep's server starts the updater detached
// (its own session, so the restart it causes cannot kill it), and the updater starts the sample
// app detached too. What they share is their environment: each has a DATA_DIR inside the demo
// directory (the server's, passed on to the updater and its worker, and the app's own). Read
// from /proc (Linux); elsewhere only the processes whose pids are known are found.

/** True when the environment (NUL-separated, as /proc/PID/environ) has DATA_DIR inside `dir`. */
export function isDemoEnvironment(environ: string, dir: string): boolean {
  return environ.split('\0').some((kv) => kv.startsWith('DATA_DIR=') && isInside(kv.slice('DATA_DIR='.length), dir))
}

function isInside(p: string, dir: string): boolean {
  const rel = path.relative(dir, p)
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))
}

/** Pids of the processes whose DATA_DIR is inside `dir`, this process excepted. */
export async function demoProcesses(dir: string): Promise<number[]> {
  if (!existsSync('/proc/self/environ')) return []
  const pids: number[] = []
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue
    // Another user's process (not ours to read) or one that just ended: not the demo's.
    const environ = await readFile(`/proc/${name}/environ`, 'latin1').catch(() => '')
    if (environ && isDemoEnvironment(environ, dir)) pids.push(Number(name))
  }
  return pids
}

/** Gone, or a zombie waiting for a parent to reap it (it runs no more). */
export function isGone(pid: number): boolean {
  if (existsSync('/proc/self/stat')) return processStartTime(pid) === undefined
  try {
    process.kill(pid, 0)
    return false
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig)
  } catch {
    // Already gone.
  }
}

/**
 * Stops the demo's processes: SIGTERM, then SIGKILL what still runs after `graceMs`; again
 * until none is left (an updater stopped mid-update may start the app once more as it rolls
 * back). `known` adds pids found otherwise (a pidfile) where /proc cannot be read.
 */
export async function stopDemoProcesses(dir: string, known: () => Promise<number[]>, opts: { graceMs?: number; rounds?: number } = {}): Promise<number[]> {
  const graceMs = opts.graceMs ?? 5000
  const stopped = new Set<number>()
  for (let round = 0; round < (opts.rounds ?? 5); round++) {
    const pids = [...new Set([...(await demoProcesses(dir)), ...(await known())])].filter((p) => p !== process.pid)
    const alive = []
    for (const pid of pids) if (!isGone(pid)) alive.push(pid)
    if (!alive.length) break
    for (const pid of alive) {
      signal(pid, 'SIGTERM')
      stopped.add(pid)
    }
    const deadline = Date.now() + graceMs
    let left = alive
    while (left.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50))
      const still = []
      for (const pid of left) if (!isGone(pid)) still.push(pid)
      left = still
    }
    for (const pid of left) signal(pid, 'SIGKILL')
  }
  return [...stopped]
}
