import type { OriginGit } from '../../server/services/origin-git'

export interface FakeOriginGit extends OriginGit {
  /** Every git command the server would have run, e.g. `git remote get-url origin`. */
  transcript: string[]
}

/** The checkout's git as the server sees it: a fixed origin URL and tag list. */
export function fakeOriginGit(opts: { url?: string; tags?: string[]; lsRemoteFails?: boolean } = {}): FakeOriginGit {
  const transcript: string[] = []
  return {
    transcript,
    async originUrl() {
      transcript.push('git remote get-url origin')
      return opts.url
    },
    async remoteTags() {
      transcript.push('git ls-remote --tags --refs origin')
      if (opts.lsRemoteFails) throw new Error('fatal: unable to access origin')
      return opts.tags ?? []
    },
  }
}
