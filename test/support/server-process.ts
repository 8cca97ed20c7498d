import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { repoRoot } from './paths'
import { freePort, waitForJson } from './run'

// Upkeep's server as its own process, started from the sources the way `npm start` runs it,
// for benchmarks that must not share an event loop with the clients they measure.

export interface ServerProcess {
  url: string
  pid: number
  /** The server's `process.memoryUsage()` after a full GC (with `reportMemory`). */
  measureMemory(): Promise<NodeJS.MemoryUsage>
  /** Log lines so far whose message is `msg`. */
  logCount(msg: string): number
  stop(): Promise<void>
}

export interface ServerProcessOptions {
  appDir: string
  dataDir: string
  env?: NodeJS.ProcessEnv
  /** Preload test/support/report-memory.mjs: the server reports its memory when asked. */
  reportMemory?: boolean
}

export async function startServerProcess(opts: ServerProcessOptions): Promise<ServerProcess> {
  const port = await freePort()
  const preload = opts.reportMemory ? ['--expose-gc', '--import', path.join(repoRoot, 'test/support/report-memory.mjs')] : []
  const child: ChildProcess = spawn(process.execPath, [...preload, '--import', 'tsx', path.join(repoRoot, 'server/main.ts')], {
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      APP_DIR: opts.appDir,
      DATA_DIR: opts.dataDir,
      HOST: '127.0.0.1',
      PORT: String(port),
      UPKEEP_SERVICE_MANAGER: 'process',
      UPDATE_CHECK_DISABLED: 'true',
      UPDATE_REPO: 'acme/widget',
      LOG_LEVEL: 'warn',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'inherit', ...(opts.reportMemory ? (['ipc'] as const) : [])],
  })
  const counts = new Map<string, number>()
  createInterface({ input: child.stdout! }).on('line', (l) => {
    try {
      const msg = String((JSON.parse(l) as { msg?: unknown }).msg)
      counts.set(msg, (counts.get(msg) ?? 0) + 1)
    } catch {
      /* not a log line */
    }
  })
  const url = `http://127.0.0.1:${port}`
  await waitForJson(`${url}/api/health`, 60_000)
  return {
    url,
    pid: child.pid!,
    measureMemory: () =>
      new Promise((resolve) => {
        child.once('message', (m: { memory: NodeJS.MemoryUsage }) => resolve(m.memory))
        child.send('measure')
      }),
    logCount: (msg) => counts.get(msg) ?? 0,
    async stop() {
      if (child.exitCode !== null) return
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await exited
    },
  }
}

/** p-th percentile (0–100) of `values`, in their unit; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (!values.length) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

/** `p50 12.3 ms, p99 45.6 ms, max 78.9 ms (n=100)`. */
export function latencySummary(ms: readonly number[]): string {
  if (!ms.length) return 'no samples'
  const f = (v: number) => `${v.toFixed(1)} ms`
  return `p50 ${f(percentile(ms, 50))}, p99 ${f(percentile(ms, 99))}, max ${f(ms.reduce((a, b) => Math.max(a, b), 0))} (n=${ms.length})`
}
