import { simpleGit, type SimpleGit } from 'simple-git'
import { parseLsRemoteTags } from '../shared/ls-remote'

/** The git operations the updater needs, run in the checkout as its owner, without a shell. */
export interface Git {
  headCommit(): Promise<string>
  /** `git describe --tags` of HEAD against release tags (`v1.2.0`, `v1.2.0-3-gabc1234`); undefined without one. */
  describe(): Promise<string | undefined>
  /** The branch HEAD is on, or undefined when detached. */
  currentBranch(): Promise<string | undefined>
  /** `git status --porcelain` paths that make the checkout unclean (ignored files never count; untracked ones unless told). */
  changedPaths(opts?: { untracked?: boolean }): Promise<string[]>
  /** Top-level entries of a worktree that git does not track (untracked or ignored): what a build made there. */
  untrackedTopLevel(worktree: string): Promise<string[]>
  remoteUrl(): Promise<string | undefined>
  /** Tags on the remote and the commit each points to (annotated tags peeled). */
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

/**
 * git in the checkout, as the user the updater runs as, in the environment given (the clean one
 * builds get: no caller's GIT_* variables), fetching from `remote`.
 */
export function createGit(dir: string, opts: { env: Record<string, string>; remote?: string; signal?: AbortSignal }): Git {
  const remote = opts.remote ?? 'origin'
  const git: SimpleGit = simpleGit({
    baseDir: dir,
    // simple-git refuses git-behaviour variables unless named; these are the ones we set on purpose.
    allowEnvironment: ['GIT_TERMINAL_PROMPT', 'GIT_SSH_COMMAND', 'GIT_CONFIG_NOSYSTEM', 'GIT_CONFIG_GLOBAL'],
    ...(opts.signal ? { abort: opts.signal } : {}),
  }).env(opts.env)

  const raw = (args: string[]) => git.raw(args)
  return {
    async headCommit() {
      return (await raw(['rev-parse', 'HEAD'])).trim()
    },
    async describe() {
      try {
        return (await raw(['describe', '--tags', '--match', 'v[0-9]*.[0-9]*.[0-9]*', '--abbrev=7'])).trim() || undefined
      } catch {
        return undefined
      }
    },
    async currentBranch() {
      try {
        const b = (await raw(['symbolic-ref', '-q', '--short', 'HEAD'])).trim()
        return b || undefined
      } catch {
        return undefined
      }
    },
    async changedPaths(o = {}) {
      const out = await raw(['status', '--porcelain=v1', '-z', `--untracked-files=${o.untracked === false ? 'no' : 'normal'}`])
      // -z: a rename's old name follows as an entry of its own, without a status.
      return out.split('\0').filter((l) => /^.. /.test(l)).map((l) => l.slice(3))
    },
    async untrackedTopLevel(worktree) {
      const inWorktree = simpleGit({ baseDir: worktree, allowEnvironment: ['GIT_TERMINAL_PROMPT'] }).env(opts.env)
      const out = await inWorktree.raw(['status', '--porcelain=v1', '-z', '--untracked-files=normal', '--ignored=traditional'])
      const names = new Set<string>()
      for (const l of out.split('\0')) if (l.startsWith('?? ') || l.startsWith('!! ')) names.add(l.slice(3).replace(/\/$/, '').split('/')[0]!)
      return [...names].sort()
    },
    async remoteUrl() {
      try {
        return (await raw(['remote', 'get-url', remote])).trim() || undefined
      } catch {
        return undefined
      }
    },
    async remoteTags() {
      return parseLsRemoteTags(await raw(['ls-remote', '--tags', remote]))
    },
    async fetchTags() {
      await raw(['fetch', '--tags', '--prune', '--no-recurse-submodules', remote])
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
