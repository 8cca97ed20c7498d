import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { parseLsRemoteTags } from '../../updater/shared/ls-remote'

const execFileAsync = promisify(execFile)

/**
 * The two questions the server asks the checkout's git, with fixed arguments only: no
 * operator input ever becomes a git argument (the repository name goes to the HTTP API alone).
 */
export interface OriginGit {
  /** `git remote get-url origin`; undefined when the checkout has no origin (or is no checkout). */
  originUrl(): Promise<string | undefined>
  /** Tag names on origin, from `git ls-remote --tags --refs origin`. */
  remoteTags(): Promise<string[]>
}

export function createOriginGit(appDir: string, opts: { timeoutMs?: number } = {}): OriginGit {
  // No shell: the arguments are fixed strings passed as argv. (node's execFile rather than execa:
  // the server imports this at start, and execa's import alone costs ~70 ms of every restart.)
  const git = (args: string[]) => execFileAsync('git', args, { cwd: appDir, env: gitEnv(process.env), timeout: opts.timeoutMs ?? 20_000, maxBuffer: 16 * 1024 * 1024 })
  return {
    async originUrl() {
      try {
        return (await git(['remote', 'get-url', 'origin'])).stdout.trim() || undefined
      } catch {
        return undefined
      }
    },
    async remoteTags() {
      try {
        return [...parseLsRemoteTags((await git(['ls-remote', '--tags', '--refs', 'origin'])).stdout).keys()]
      } catch (err) {
        const e = err as { stderr?: string; message?: string }
        const lines = (e.stderr || e.message || String(err)).split('\n').map((l) => l.trim()).filter(Boolean)
        throw new Error(`git ls-remote --tags origin failed: ${(lines.find((l) => l.startsWith('fatal:')) ?? lines[0] ?? 'no output').slice(0, 300)}`, { cause: err })
      }
    },
  }
}

// A small environment: nothing that makes git run other programs (EDITOR, GIT_SSH_COMMAND, GIT_ASKPASS…).
// GIT_TERMINAL_PROMPT=0: fail instead of waiting for a password nobody will type.
const PASSED_ON = ['PATH', 'HOME', 'USER', 'LANG', 'LC_ALL', 'SSH_AUTH_SOCK', 'XDG_CONFIG_HOME', 'GIT_CONFIG_NOSYSTEM', 'http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY']

function gitEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = { GIT_TERMINAL_PROMPT: '0' }
  for (const key of PASSED_ON) if (env[key] !== undefined) out[key] = env[key]!
  return out
}

