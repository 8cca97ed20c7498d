import { spawn } from 'node:child_process'
import type { RunAs } from '../adapters/exec'

/** How a command ended and what it printed; a non-zero exit is a result, not an exception. */
export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs `file args` as `user` in `cwd` with exactly `env` (no shell); never throws for an exit status. */
export type RunAsUser = (user: RunAs, file: string, args: string[], opts: { cwd: string; env: Record<string, string>; timeoutMs: number }) => Promise<RunResult>

const MAX_OUTPUT = 1 << 20

/**
 * The real one: root switches to the user for the child only (setuid in the child), so nothing
 * root runs in another user's checkout runs as root. Run as that user already, no switch.
 */
export const runAsUser: RunAsUser = (user, file, args, opts) =>
  new Promise((resolve) => {
    const self = process.getuid?.()
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(self === 0 && user.uid !== 0 ? { uid: user.uid, gid: user.gid } : {}),
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => stdout.length < MAX_OUTPUT && (stdout += d.toString('utf8')))
    child.stderr.on('data', (d: Buffer) => stderr.length < MAX_OUTPUT && (stderr += d.toString('utf8')))
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs)
    child.on('error', (err) => {
      clearTimeout(timer)
      resolve({ code: 127, stdout, stderr: stderr + err.message })
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code: code ?? 128, stdout, stderr: signal === 'SIGKILL' && code === null ? `${stderr}timed out after ${opts.timeoutMs} ms` : stderr })
    })
  })
