import { simpleGit, type SimpleGit } from 'simple-git'
import type { RunAs } from './exec'

/** The git operations the updater needs, run in the checkout as its owner, without a shell. */
export interface Git {
  headCommit(): Promise<string>
  /** The branch HEAD is on, or undefined when detached. */
  currentBranch(): Promise<string | undefined>
  /** `git status --porcelain` paths that make the checkout unclean (ignored files never count). */
  changedPaths(): Promise<string[]>
  remoteUrl(): Promise<string | undefined>
  /** Release tags on origin and the commit each points to (annotated tags peeled). */
  remoteTags(): Promise<Map<string, string>>
  fetchTags(): Promise<void>
  /** The commit a local tag points to, or undefined when there is no such tag. */
  tagCommit(tag: string): Promise<string | undefined>
  worktreeAdd(dir: string, commit: string): Promise<void>
  worktreeRemove(dir: string): Promise<void>
  checkoutDetached(commit: string): Promise<void>
  checkoutBranch(branch: string): Promise<void>
  /** The commit `ref` names, or undefined. */
  revParse(ref: string): Promise<string | undefined>
}

export function createGit(dir: string, opts: { runAs?: RunAs; signal?: AbortSignal } = {}): Git {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    // Never wait for a password on a terminal nobody watches.
    GIT_TERMINAL_PROMPT: '0',
    LANG: 'C',
    ...(opts.runAs ? { HOME: opts.runAs.home, USER: opts.runAs.name } : process.env.HOME ? { HOME: process.env.HOME } : {}),
  }
  for (const k of ['SSH_AUTH_SOCK', 'GIT_SSH_COMMAND', 'GIT_CONFIG_NOSYSTEM', 'GIT_CONFIG_GLOBAL', 'http_proxy', 'https_proxy', 'no_proxy']) {
    const v = process.env[k]
    if (v !== undefined) env[k] = v
  }
  const git: SimpleGit = simpleGit({
    baseDir: dir,
    // simple-git refuses git-behaviour variables unless named; these are the ones we set on purpose.
    allowEnvironment: ['GIT_TERMINAL_PROMPT', 'GIT_SSH_COMMAND', 'GIT_CONFIG_NOSYSTEM', 'GIT_CONFIG_GLOBAL'],
    ...(opts.runAs ? { spawnOptions: { uid: opts.runAs.uid, gid: opts.runAs.gid } } : {}),
    ...(opts.signal ? { abort: opts.signal } : {}),
  }).env(env)

  const raw = (args: string[]) => git.raw(args)
  return {
    async headCommit() {
      return (await raw(['rev-parse', 'HEAD'])).trim()
    },
    async currentBranch() {
      try {
        const b = (await raw(['symbolic-ref', '-q', '--short', 'HEAD'])).trim()
        return b || undefined
      } catch {
        return undefined
      }
    },
    async changedPaths() {
      const out = await raw(['status', '--porcelain=v1', '-z', '--untracked-files=normal'])
      return out.split('\0').filter(Boolean).map((l) => l.slice(3))
    },
    async remoteUrl() {
      try {
        return (await raw(['remote', 'get-url', 'origin'])).trim() || undefined
      } catch {
        return undefined
      }
    },
    async remoteTags() {
      const out = await raw(['ls-remote', '--tags', 'origin'])
      const tags = new Map<string, string>()
      const peeled = new Map<string, string>()
      for (const line of out.split('\n')) {
        const [sha, ref] = line.trim().split(/\s+/)
        if (!sha || !ref?.startsWith('refs/tags/')) continue
        const name = ref.slice('refs/tags/'.length)
        if (name.endsWith('^{}')) peeled.set(name.slice(0, -3), sha)
        else tags.set(name, sha)
      }
      for (const [name, sha] of peeled) tags.set(name, sha)
      return tags
    },
    async fetchTags() {
      await raw(['fetch', '--tags', '--prune', '--no-recurse-submodules', 'origin'])
    },
    async tagCommit(tag) {
      return this.revParse(`refs/tags/${tag}^{commit}`)
    },
    async revParse(ref) {
      try {
        return (await raw(['rev-parse', '--verify', '--quiet', ref])).trim() || undefined
      } catch {
        return undefined
      }
    },
    async worktreeAdd(wt, commit) {
      await raw(['worktree', 'add', '--detach', wt, commit])
    },
    async worktreeRemove(wt) {
      try {
        await raw(['worktree', 'remove', '--force', '--force', wt])
      } catch {
        /* not a worktree (any more): pruned below */
      }
      await raw(['worktree', 'prune'])
    },
    async checkoutDetached(commit) {
      await raw(['checkout', '--quiet', '--detach', commit])
    },
    async checkoutBranch(branch) {
      await raw(['checkout', '--quiet', branch])
    },
  }
}

/** The line of a git failure worth showing: its first `fatal:`/`error:` line, else its first line. */
export function gitMessage(err: unknown): string {
  const lines = String((err as Error)?.message ?? err).split('\n').map((l) => l.trim()).filter(Boolean)
  return lines.find((l) => /^(fatal|error):/.test(l)) ?? lines[0] ?? 'unknown error'
}
