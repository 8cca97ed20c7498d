import { execa } from 'execa'

/** A user as the updater knows it: who an app runs and builds as. */
export interface RunAs {
  uid: number
  gid: number
  home: string
  name: string
}

export interface ExecOptions {
  cwd: string
  /** Added to the environment the exec was created with. */
  env?: Record<string, string>
  /** Aborting kills the command's whole process group. */
  signal?: AbortSignal
  /** Each line of output (stdout and stderr), as it comes. */
  onLine?: (line: string) => void
  /** Told the pid of the command's process group leader once it runs (journaled, so recovery can kill it). */
  onSpawn?: (pid: number) => void | Promise<void>
  /** Killed (as by `signal`) after this long. */
  timeoutMs?: number
}

export interface ExecResult {
  code: number
  stdout: string
  /** The first and last lines of stdout and stderr together, for error messages. */
  tail: string[]
}

export type Exec = (file: string, args: string[], opts: ExecOptions) => Promise<ExecResult>

/** A command that exited non-zero (or could not start); `tail` keeps its first and last output lines. */
export class ExecError extends Error {
  override name = 'ExecError'
  constructor(
    readonly argv: string[],
    readonly code: number | undefined,
    readonly tail: string[],
    readonly signal?: string,
    cause?: unknown,
    readonly timedOut = false,
  ) {
    const how = timedOut ? 'timed out' : signal ? `was killed by ${signal}` : code === undefined ? 'could not start' : `exited ${code}`
    super(`${argv.join(' ')} ${how}`, { cause })
  }
}

const HEAD_LINES = 40
const TAIL_LINES = 60
const STDOUT_LIMIT = 1 << 20

/**
 * Keeps the first and the last lines of a command's output: a failed build's cause is usually
 * near the top (npm prints its usage text or a stack below it), its verdict at the bottom.
 */
export class OutputKeeper {
  private readonly head: string[] = []
  private readonly tailLines: string[] = []
  private dropped = 0
  push(line: string): void {
    if (this.head.length < HEAD_LINES) return void this.head.push(line)
    this.tailLines.push(line)
    if (this.tailLines.length > TAIL_LINES) {
      this.tailLines.shift()
      this.dropped++
    }
  }
  lines(): string[] {
    return [...this.head, ...(this.dropped ? [`… (${this.dropped} lines not kept) …`] : []), ...this.tailLines]
  }
}

/**
 * Runs commands without a shell, each in its own process group (so a kill reaches npm's
 * children too), in exactly the environment given: nothing of the caller's is inherited.
 * Output is streamed line by line; only its first and last lines are kept.
 */
export function createExec(opts: { env: Record<string, string> }): Exec {
  return async (file, args, o) => {
    const env: Record<string, string> = { ...opts.env, ...o.env }
    const argv = [file, ...args]
    const kept = new OutputKeeper()
    let stdout = ''
    let partial = { out: '', err: '' }
    const push = (line: string) => {
      kept.push(line)
      o.onLine?.(line)
    }
    const child = execa(file, args, {
      cwd: o.cwd,
      env,
      extendEnv: false,
      stdin: 'ignore',
      buffer: false,
      reject: false,
      detached: true,
    })
    const collect = (which: 'out' | 'err') => (chunk: Buffer) => {
      const text = partial[which] + chunk.toString('utf8')
      const lines = text.split('\n')
      partial[which] = lines.pop() ?? ''
      for (const l of lines) push(l)
      if (which === 'out' && stdout.length < STDOUT_LIMIT) stdout += chunk.toString('utf8')
    }
    child.stdout?.on('data', collect('out'))
    child.stderr?.on('data', collect('err'))

    let killTimer: NodeJS.Timeout | undefined
    let timedOut = false
    const kill = () => {
      if (!child.pid) return
      killGroup(child.pid, 'SIGTERM')
      killTimer = setTimeout(() => child.pid && killGroup(child.pid, 'SIGKILL'), 5000)
    }
    const timeout = o.timeoutMs
      ? setTimeout(() => {
          timedOut = true
          kill()
        }, o.timeoutMs)
      : undefined
    if (o.signal?.aborted) kill()
    o.signal?.addEventListener('abort', kill, { once: true })
    if (child.pid && o.onSpawn) await o.onSpawn(child.pid)

    const result = await child
    o.signal?.removeEventListener('abort', kill)
    clearTimeout(killTimer)
    clearTimeout(timeout)
    for (const which of ['out', 'err'] as const) if (partial[which]) push(partial[which])
    partial = { out: '', err: '' }
    if (result.failed || result.exitCode !== 0) {
      if (result.code === 'ENOENT' || (result.exitCode === undefined && !result.signal)) {
        const lines = kept.lines()
        throw new ExecError(argv, undefined, lines.length ? lines : [String(result.originalMessage ?? result.message)], undefined, result.cause)
      }
      throw new ExecError(argv, result.exitCode, kept.lines(), result.signal ?? undefined, undefined, timedOut)
    }
    return { code: 0, stdout, tail: kept.lines() }
  }
}

/** Signals a whole process group; a group already gone is fine. */
export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal)
  } catch {
    try {
      process.kill(pid, signal)
    } catch {
      /* gone */
    }
  }
}
