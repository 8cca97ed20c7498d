import { spawn, type ChildProcess } from 'node:child_process'
import { chown, mkdir, mkdtemp } from 'node:fs/promises'
import path from 'node:path'
import { OWNER } from './fixture-app'
import { run, type RunResult } from './run'

// Builds and servers of the test apps run as an unprivileged user with an environment of their
// own, as a systemd unit would run them: nothing of the test's environment (its HOME, its PATH,
// the npm_config_* that `npx vitest` sets) leaks into them.

export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** A new HOME for OWNER under `root` (the build caches of npm and go live there). */
export async function ownerHome(root: string, name = 'home'): Promise<string> {
  await mkdir(root, { recursive: true })
  const home = await mkdtemp(path.join(root, `${name}-`))
  await chown(home, OWNER.uid, OWNER.gid)
  return home
}

/** The whole environment of a command run as OWNER: PATH, HOME, a UTF-8 locale and `extra`. */
export function cleanEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: SYSTEM_PATH, HOME: home, LANG: 'C.UTF-8', ...extra }
}

/** Runs `argv` as OWNER in `cwd` with exactly `env`; never throws on a non-zero exit. */
export function runAsOwner(argv: readonly string[], opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<RunResult> {
  const [cmd, ...args] = argv
  return run(cmd!, args, { cwd: opts.cwd, env: opts.env, uid: OWNER.uid, gid: OWNER.gid, timeoutMs: opts.timeoutMs })
}

/** Like runAsOwner, but throws with the command's output when it fails. */
export async function runAsOwnerOk(argv: readonly string[], opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<RunResult> {
  const r = await runAsOwner(argv, opts)
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code ?? r.signal} in ${opts.cwd}:\n${tail(r.stdout + r.stderr)}`)
  return r
}

export interface OwnedProcess {
  child: ChildProcess
  /** stdout and stderr so far, interleaved. */
  output(): string
  /** Resolves with the exit code (or signal) once the process has ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with how it ended and how long stopping took. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>
}

/** Starts a long-running `argv` as OWNER, as its unit's ExecStart would. */
export function startAsOwner(argv: readonly string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): OwnedProcess {
  const [cmd, ...args] = argv
  const child = spawn(cmd!, args, { cwd: opts.cwd, env: opts.env, uid: OWNER.uid, gid: OWNER.gid, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('error', (err) => {
      out += `\nspawn failed: ${err.message}`
      resolve({ code: null, signal: null })
    })
    child.on('close', (code, signal) => resolve({ code, signal }))
  })
  return {
    child,
    output: () => out,
    exited,
    async stop(graceMs = 10_000) {
      const t0 = Date.now()
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
      const end = await exited
      clearTimeout(timer)
      return { ...end, ms: Date.now() - t0 }
    },
  }
}

/**
 * Polls `url` until it answers 200 and returns the body, failing early when `proc` exits first
 * (with its output, which says why).
 */
export async function waitForHealthy(url: string, proc: OwnedProcess, timeoutMs = 60_000): Promise<{ body: string; ms: number }> {
  const t0 = Date.now()
  let exited = false
  void proc.exited.then(() => (exited = true))
  let last = ''
  while (Date.now() - t0 < timeoutMs) {
    if (exited) throw new Error(`the server exited before ${url} answered:\n${tail(proc.output())}`)
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) })
      const body = await res.text()
      if (res.status === 200) return { body, ms: Date.now() - t0 }
      last = `HTTP ${res.status} ${body.slice(0, 200)}`
    } catch (err) {
      last = String(err)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms (last: ${last}):\n${tail(proc.output())}`)
}

export function tail(text: string, lines = 30): string {
  return text.trim().split('\n').slice(-lines).join('\n')
}
