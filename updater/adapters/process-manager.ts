import { spawn, type ChildProcess } from 'node:child_process'
import { chownSync, mkdirSync, openSync, closeSync, writeSync, fstatSync } from 'node:fs'
import { open, readFile } from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { UpdateError } from '../shared/errors'
import type { Logger } from '../shared/log'
import type { Paths } from '../shared/paths'
import { isProcessAlive, readPidFile, removePidFileIfOurs, writePidFile } from '../shared/pidfile'
import type { RunAs } from './exec'
import { readReleaseManifest } from './release-manifest'
import type { ServiceManager, ServiceState } from './service-manager'

export interface ProcessManagerOptions {
  paths: Paths
  host: string
  port: number
  log: Logger
  /** The server runs as the checkout's owner when the updater is root. */
  runAs?: RunAs
  env?: NodeJS.ProcessEnv
  /** SIGTERM, then SIGKILL after this long. */
  stopTimeoutMs?: number
}

/**
 * The `process` service manager (no systemd: a laptop, `npm start`): the server is
 * `node current/<entry>` started detached, tracked by `data/server.pid`, logging to
 * `data/logs/server.log`. While the updater that started it lives, an exit is seen at once.
 */
export function createProcessManager(opts: ProcessManagerOptions): ServiceManager {
  const { paths, log } = opts
  const logFile = path.join(paths.logs, 'server.log')
  const stopTimeoutMs = opts.stopTimeoutMs ?? 15_000
  let child: ChildProcess | undefined
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined
  /** Resolves when Node has handled the exit of `child` (and set `exit`). */
  let exited: Promise<void> = Promise.resolve()
  let logOffset = 0

  const stop = async () => {
    const pf = await readPidFile(paths.pidFile)
    if (!pf || !isProcessAlive(pf.pid, pf.start)) {
      if (pf) await removePidFileIfOurs(paths.pidFile, pf.pid)
      return
    }
    log.info({ pid: pf.pid }, 'stopping server')
    process.kill(pf.pid, 'SIGTERM')
    const deadline = Date.now() + stopTimeoutMs
    while (isProcessAlive(pf.pid, pf.start) && Date.now() < deadline) await sleep(25)
    if (isProcessAlive(pf.pid, pf.start)) {
      log.warn({ pid: pf.pid }, 'server ignored SIGTERM, killing it')
      process.kill(pf.pid, 'SIGKILL')
      while (isProcessAlive(pf.pid, pf.start)) await sleep(25)
    }
    await removePidFileIfOurs(paths.pidFile, pf.pid)
  }

  const start = async () => {
    const manifest = await readReleaseManifest(paths.current)
    const entry = path.join(paths.current, manifest?.serverEntry ?? 'server.mjs')
    if (await isListening(opts.host, opts.port)) {
      throw new UpdateError('RESTART_FAILED', `something that upkeep did not start listens on ${opts.host}:${opts.port}`, {
        hint: `Stop it (it has no ${path.relative(paths.appDir, paths.pidFile)}), then run \`upkeep recover\`.`,
        step: 'restart',
      })
    }
    mkdirSync(paths.logs, { recursive: true })
    const fd = openSync(logFile, 'a', 0o640)
    // Started by root for the checkout's owner: the server (and the updater it launches) write here too.
    if (opts.runAs && process.getuid?.() === 0) {
      chownSync(paths.logs, opts.runAs.uid, opts.runAs.gid)
      chownSync(logFile, opts.runAs.uid, opts.runAs.gid)
    }
    writeSync(fd, `--- upkeep starting ${entry} at ${new Date().toISOString()}\n`)
    logOffset = fstatSync(fd).size
    const env = { ...(opts.env ?? process.env) }
    // The updater's own knobs and systemd's socket variables are not the server's.
    for (const k of Object.keys(env)) if (k.startsWith('UPKEEP_TEST_') || k.startsWith('LISTEN_')) delete env[k]
    exit = undefined
    child = spawn(process.execPath, [entry], {
      cwd: paths.appDir,
      env,
      detached: true,
      stdio: ['ignore', fd, fd],
      ...(opts.runAs ? { uid: opts.runAs.uid, gid: opts.runAs.gid } : {}),
    })
    closeSync(fd)
    const started = child
    exited = new Promise<void>((resolve) => {
      started.once('exit', (code, signal) => {
        if (child === started) exit = { code, signal }
        resolve()
      })
    })
    await new Promise<void>((resolve, reject) => {
      started.once('spawn', resolve)
      started.once('error', (err) => reject(new UpdateError('RESTART_FAILED', `cannot start ${entry}: ${err.message}`, { step: 'restart', cause: err })))
    })
    started.unref()
    await writePidFile(paths.pidFile, started.pid!)
    log.info({ pid: started.pid, entry }, 'started server')
  }

  return {
    kind: 'process',
    start,
    stop,
    async restart() {
      await stop()
      await start()
    },
    async state(): Promise<ServiceState> {
      // Our server is gone, but Node handles a child's exit (SIGCHLD) on a later turn of the
      // event loop: wait for that, so its exit status is known. (Bounded in case it never comes.)
      if (child?.pid !== undefined && !exit && !isProcessAlive(child.pid)) await within(exited, EXIT_EVENT_WAIT_MS)
      if (child && exit) {
        return { active: exit.code === 0 ? 'inactive' : 'failed', subState: 'exited', mainPid: undefined, restarts: 0, exitStatus: exit.code ?? (exit.signal ? 128 : undefined) }
      }
      const pf = await readPidFile(paths.pidFile)
      if (pf && isProcessAlive(pf.pid, pf.start)) return { active: 'active', subState: 'running', mainPid: pf.pid, restarts: 0, exitStatus: undefined }
      return { active: child ? 'failed' : 'inactive', subState: 'dead', mainPid: undefined, restarts: 0, exitStatus: undefined }
    },
    async recentLogs(lines = 30) {
      try {
        const h = await open(logFile, 'r')
        try {
          const text = (await readFile(h, 'utf8')).slice(logOffset)
          return text.split('\n').filter(Boolean).slice(-lines)
        } finally {
          await h.close()
        }
      } catch {
        return []
      }
    },
  }
}

/** How long state() waits for Node to report the exit of a server that is already gone. */
const EXIT_EVENT_WAIT_MS = 5000

/** Resolves when `p` does, or after `ms` at the latest. */
async function within(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([p, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))])
  } finally {
    clearTimeout(timer)
  }
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms))
}

/** True when a TCP connection to host:port succeeds (a wildcard host is probed on loopback). */
export function isListening(host: string, port: number): Promise<boolean> {
  const target = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host
  return new Promise((resolve) => {
    const s = net.connect({ host: target, port })
    s.setTimeout(1000)
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('timeout', () => {
      s.destroy()
      resolve(false)
    })
    s.once('error', () => resolve(false))
  })
}
