import { execFile } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'
import { parseLsRemoteTags } from '../../updater/shared/ls-remote'
import type { OriginGit } from './origin-git'

const execFileAsync = promisify(execFile)

/**
 * An app's remote, seen from the server (another user than the app's): the URL is read from the
 * checkout's git config as a plain file (git refuses to work in another user's repository), and
 * its tags are listed with `git ls-remote URL`, outside any repository.
 */
export function createAppGit(checkout: string, remote: string, opts: { timeoutMs?: number } = {}): OriginGit {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', GIT_TERMINAL_PROMPT: '0', HOME: process.env.HOME ?? '/', LANG: 'C' }
  const git = (args: string[]) => execFileAsync('git', args, { cwd: '/', env, timeout: opts.timeoutMs ?? 20_000, maxBuffer: 16 << 20 })
  const originUrl = async () => {
    try {
      const url = (await git(['config', '--file', path.join(checkout, '.git', 'config'), '--get', `remote.${remote}.url`])).stdout.trim()
      // The app's user writes that file: a "URL" that is an option is not one.
      return url && !url.startsWith('-') ? url : undefined
    } catch {
      return undefined
    }
  }
  return {
    originUrl,
    async remoteTags() {
      const url = await originUrl()
      if (!url) throw new Error(`the checkout ${checkout} has no remote "${remote}"`)
      try {
        return [...parseLsRemoteTags((await git(['ls-remote', '--tags', '--refs', url])).stdout).keys()]
      } catch (err) {
        const e = err as { stderr?: string; message?: string }
        const lines = (e.stderr || e.message || String(err)).split('\n').map((l) => l.trim()).filter(Boolean)
        throw new Error(`git ls-remote --tags ${remote} failed: ${(lines.find((l) => l.startsWith('fatal:')) ?? lines[0] ?? 'no output').slice(0, 300)}`, { cause: err })
      }
    },
  }
}
