import { execa } from 'execa'

/** The user commands run as: the checkout's owner, never root (DESIGN.md "Lessons"). */
export interface RunAs {
  uid: number
  gid: number
  home: string
  name: string
}

export interface ExecOptions {
  cwd: string
  env?: Record<string, string>
  /** Aborting kills the command's whole process group. */
  signal?: AbortSignal
  /** Each line of output (stdout and stderr), as it comes. */
  onLine?: (line: string) => void
  /** Told the pid of the command's process group leader once it runs (journaled, so recovery can kill it). */
  onSpawn?: (pid: number) => void | Promise<void>
  /** Run as the invoking user even when an owner is set (e.g. tar restoring as root). */
  asSelf?: boolean
}

export interface ExecResult {
  code: number
  stdout: string
  /** The last lines of stdout and stderr together, for error messages. */
  tail: string[]
}

export type Exec = (file: string, args: string[], opts: ExecOptions) => Promise<ExecResult>

/** A command that exited non-zero (or could not start); `tail` keeps its last output lines. */
export class ExecError extends Error {
  override name = 'ExecError'
  constructor(
    readonly argv: string[],
    readonly code: number | undefined,
    readonly tail: string[],
    readonly signal?: string,
    cause?: unknown,
  ) {
    const how = signal ? `was killed by ${signal}` : code === undefined ? 'could not start' : `exited ${code}`
    super(`${argv.join(' ')} ${how}`, { cause })
  }
}

const TAIL_LINES = 60
const STDOUT_LIMIT = 1 << 20

/**
 * Runs commands without a shell, each in its own process group (so a kill reaches npm's
 * children too), as `runAs` when given. Output is streamed line by line and only its tail is kept.
 */
export function createExec(opts: { runAs?: RunAs; env?: Record<string, string | undefined> } = {}): Exec {
  return async (file, args, o) => {
    const runAs = o.asSelf ? undefined : opts.runAs
    const env: Record<string, string | undefined> = { ...(opts.env ?? process.env), ...o.env }
    if (runAs) Object.assign(env, { HOME: runAs.home, USER: runAs.name, LOGNAME: runAs.name })
    const argv = [file, ...args]
    const tail: string[] = []
    let stdout = ''
    let partial = { out: '', err: '' }
    const push = (line: string) => {
      tail.push(line)
      if (tail.length > TAIL_LINES) tail.shift()
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
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
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
    const kill = () => {
      if (!child.pid) return
      killGroup(child.pid, 'SIGTERM')
      killTimer = setTimeout(() => child.pid && killGroup(child.pid, 'SIGKILL'), 5000)
    }
    if (o.signal?.aborted) kill()
    o.signal?.addEventListener('abort', kill, { once: true })
    if (child.pid && o.onSpawn) await o.onSpawn(child.pid)

    const result = await child
    o.signal?.removeEventListener('abort', kill)
    clearTimeout(killTimer)
    for (const which of ['out', 'err'] as const) if (partial[which]) push(partial[which])
    partial = { out: '', err: '' }
    if (result.failed || result.exitCode !== 0) {
      if (result.code === 'ENOENT' || (result.exitCode === undefined && !result.signal)) {
        throw new ExecError(argv, undefined, tail.length ? tail : [String(result.originalMessage ?? result.message)], undefined, result.cause)
      }
      throw new ExecError(argv, result.exitCode, tail, result.signal ?? undefined)
    }
    return { code: 0, stdout, tail }
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
