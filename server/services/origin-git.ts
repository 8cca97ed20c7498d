import { simpleGit } from 'simple-git'

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
  const git = () =>
    simpleGit({ baseDir: appDir, timeout: { block: opts.timeoutMs ?? 20_000 } })
      // Never wait for a password prompt, nor ask an ssh agent to confirm a host key.
      .env({ ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_SSH_COMMAND: process.env.GIT_SSH_COMMAND ?? 'ssh -o BatchMode=yes' })
  return {
    async originUrl() {
      try {
        const url = (await git().remote(['get-url', 'origin'])) ?? ''
        return url.trim() || undefined
      } catch {
        return undefined
      }
    },
    async remoteTags() {
      const out = await git().listRemote(['--tags', '--refs', 'origin'])
      return parseLsRemoteTags(out)
    },
  }
}

/** `<sha>\trefs/tags/<name>` lines → tag names. Pure. */
export function parseLsRemoteTags(output: string): string[] {
  const tags: string[] = []
  for (const line of output.split('\n')) {
    const m = /^[0-9a-f]{40,64}\trefs\/tags\/(\S+)$/.exec(line.trim())
    if (m) tags.push(m[1]!)
  }
  return tags
}
