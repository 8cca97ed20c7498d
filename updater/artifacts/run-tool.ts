import { execa } from 'execa'
import { UpdateError } from '../shared/errors'

export interface ToolResult {
  /** Exit code; non-zero is an answer here (a bad signature), not an exception. */
  code: number
  stdout: string
  stderr: string
}

export interface ToolOptions {
  cwd?: string
  /** A file given to the command as its standard input (ssh-keygen -Y verify reads the message there). */
  inputFile?: string
  env?: Record<string, string>
  timeoutMs?: number
}

/** Runs a short command (ssh-keygen, git) to completion and hands back its exit code and output. */
export type RunTool = (file: string, args: string[], opts?: ToolOptions) => Promise<ToolResult>

const OUTPUT_LIMIT = 256 << 10

/**
 * The real RunTool: no shell, C locale (so messages can be read), output capped. It runs as the
 * calling process's user, which in the update worker is the app's own user.
 */
export function createRunTool(): RunTool {
  return async (file, args, opts = {}) => {
    const result = await execa(file, args, {
      cwd: opts.cwd,
      env: { LC_ALL: 'C', LANGUAGE: '', ...opts.env },
      reject: false,
      ...(opts.inputFile ? { inputFile: opts.inputFile } : { stdin: 'ignore' as const }),
      timeout: opts.timeoutMs ?? 60_000,
      maxBuffer: OUTPUT_LIMIT,
      stripFinalNewline: true,
    })
    if (result.code === 'ENOENT' && result.exitCode === undefined) {
      const pkg = file === 'ssh-keygen' ? 'openssh-client' : file
      throw new UpdateError('INTERNAL', `${file} is not installed`, { hint: `install it (Debian/Ubuntu: apt-get install ${pkg}) and try again` })
    }
    if (result.timedOut) throw new UpdateError('INTERNAL', `${file} ${args[0] ?? ''} did not finish within ${(opts.timeoutMs ?? 60_000) / 1000} s`, { hint: 'try again; if it keeps happening, check the machine\'s load' })
    return { code: result.exitCode ?? 1, stdout: String(result.stdout ?? ''), stderr: String(result.stderr ?? '') }
  }
}
