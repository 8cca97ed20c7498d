import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, openSync, closeSync, writeSync, fstatSync } from 'node:fs'
import { open, readFile } from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { UpdateError } from '../shared/errors'
import type { Logger } from '../shared/log'
import type { AppPaths } from '../shared/paths'
import { isProcessAlive, readPidFile, removePidFileIfOurs, writePidFile } from '../shared/pidfile'
import { readReleaseManifest } from './release-manifest'
import type { ServiceManager, ServiceState } from './service-manager'

export interface ProcessManagerOptions {
  paths: Pick<AppPaths, 'appDir' | 'current' | 'pidFile' | 'logs'>
  /** How the app starts: argv (`{serverEntry}` stands for the release's entry file in `current`), cwd inside the checkout. */
  command: { argv: string[]; cwd?: string | undefined }
  /** The environment it starts in. */
  env: Record<string, string | undefined>
  /** Where the app listens: something else listening there is refused before a start. */
  listen?: { host: string; port: number }
  log: Logger
  /** SIGTERM, then SIGKILL after this long. */
  stopTimeoutMs?: number
  /** The app's output file in `paths.logs`. Default `app.log`. */
  logName?: string
}

/**
 * The `process` service manager (no systemd: a laptop, `npm start`): the app's command started
 * detached as the user the updater runs as, tracked by a pidfile in the app's state, logging to
 * `logs/app.log` there. While the updater that started it lives, an exit is seen at once.
 */
export function createProcessManager(opts: ProcessManagerOptions): ServiceManager {
  const { paths, log } = opts
  const logFile = path.join(paths.logs, opts.logName ?? 'app.log')
  const stopTimeoutMs = opts.stopTimeoutMs ?? 15_000
  let child: ChildProcess | undefined
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined
  /** Resolves when the last started child has exited and its status is known. */
  let exited: Promise<void> = Promise.resolve()
  let logOffset = 0

  const stop = async () => {
    const pf = await readPidFile(paths.pidFile)
    if (!pf || !isProcessAlive(pf.pid, pf.start)) {
      if (pf) await removePidFileIfOurs(paths.pidFile, pf.pid)
      return
    }
    log.info({ pid: pf.pid }, 'stopping app')
    process.kill(pf.pid, 'SIGTERM')
    const deadline = Date.now() + stopTimeoutMs
    while (isProcessAlive(pf.pid, pf.start) && Date.now() < deadline) await sleep(25)
    if (isProcessAlive(pf.pid, pf.start)) {
      log.warn({ pid: pf.pid }, 'app ignored SIGTERM, killing it')
      process.kill(pf.pid, 'SIGKILL')
      while (isProcessAlive(pf.pid, pf.start)) await sleep(25)
    }
    await removePidFileIfOurs(paths.pidFile, pf.pid)
  }

  const argvFor = async (): Promise<string[]> => {
    const manifest = opts.command.argv.includes('{serverEntry}') ? await readReleaseManifest(paths.current) : undefined
    return opts.command.argv.map((a) => (a === '{serverEntry}' ? path.join(paths.current, manifest?.serverEntry ?? 'server.mjs') : a))
  }

  const start = async () => {
    const [file, ...args] = await argvFor()
    const cwd = opts.command.cwd ? path.resolve(paths.appDir, opts.command.cwd) : paths.appDir
    if (opts.listen && (await isListening(opts.listen.host, opts.listen.port))) {
      throw new UpdateError('RESTART_FAILED', `something that upkeep did not start listens on ${opts.listen.host}:${opts.listen.port}`, {
        hint: `Stop it (it is not the process in ${paths.pidFile}), then run \`upkeep recover\`.`,
        step: 'restart',
      })
    }
    mkdirSync(paths.logs, { recursive: true })
    const fd = openSync(logFile, 'a', 0o640)
    writeSync(fd, `--- upkeep starting ${[file, ...args].join(' ')} at ${new Date().toISOString()}\n`)
    logOffset = fstatSync(fd).size
    exit = undefined
    child = spawn(file!, args, { cwd, env: opts.env, detached: true, stdio: ['ignore', fd, fd] })
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
      started.once('error', (err) => reject(new UpdateError('RESTART_FAILED', `cannot start ${file}: ${err.message}`, { step: 'restart', cause: err })))
    })
    started.unref()
    await writePidFile(paths.pidFile, started.pid!)
    log.info({ pid: started.pid, argv: [file, ...args] }, 'started app')
  }

  return {
    kind: 'process',
    units: [opts.command.argv.join(' ')],
    start,
    stop,
    async restart() {
      await stop()
      await start()
    },
    async state(): Promise<ServiceState> {
      const pf = await readPidFile(paths.pidFile)
      const alive = pf !== undefined && isProcessAlive(pf.pid, pf.start)
      // Gone, but its exit not handled yet (a busy machine): wait for it, so the status is known.
      if (child && !alive && !exit) await Promise.race([exited, new Promise((r) => setTimeout(r, 2000).unref())])
      if (child && exit) {
        return { active: exit.code === 0 ? 'inactive' : 'failed', subState: 'exited', mainPid: undefined, restarts: 0, exitStatus: exit.code ?? (exit.signal ? 128 : undefined) }
      }
      if (alive) return { active: 'active', subState: 'running', mainPid: pf.pid, restarts: 0, exitStatus: undefined }
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
