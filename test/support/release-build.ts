import { mkdir, rm } from 'node:fs/promises'
import { createExec } from '../../updater/adapters/exec'
import { createGit } from '../../updater/adapters/git'
import type { StepContext } from '../../updater/context'
import type { Journal } from '../../updater/shared/journal'
import type { AppDefinition } from '../../updater/shared/apps/definition'
import { systemClock } from '../../updater/shared/clock'
import type { AppPaths } from '../../updater/shared/paths'
import { DEV_VERSION, versionFromDescribe } from '../../updater/shared/version'
import { build } from '../../updater/steps/build'
import { fakeDeps } from './fake-deps'
import { git } from './git-fixtures'

// A release built by the updater's own build step (a worktree of the tag in staging, the app's
// build commands, the release manifest), for fixtures that start out "installed": what they
// start from is what an update would have made, never a hand-written copy of it.

/** Builds `tag` of the checkout at `paths.appDir` into `.upkeep/releases/<tag>`; returns that directory. */
export async function buildRelease(paths: AppPaths, tag: string, app?: AppDefinition): Promise<string> {
  const commit = git(paths.appDir, ['rev-parse', `refs/tags/${tag}^{commit}`])
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/', GIT_TERMINAL_PROMPT: '0' }
  const { deps, dir } = await fakeDeps({
    paths,
    ...(app ? { app } : {}),
    git: createGit(paths.appDir, { env }),
    exec: createExec({ env }),
    clock: systemClock,
  })
  const now = new Date().toISOString()
  const j: Journal = {
    schema: 1,
    updateId: `fixture-${tag}`,
    kind: 'update',
    trigger: 'cli',
    pid: process.pid,
    startedAt: now,
    updatedAt: now,
    from: { version: DEV_VERSION },
    to: { tag, version: versionFromDescribe(tag), commit },
    options: { backup: false, force: false },
    state: 'running',
    steps: [],
    recoveries: 0,
  }
  const ctx: StepContext = { ...deps, j, signal: new AbortController().signal, save: async () => {}, touch: async () => {}, emit: async () => {} }
  // What the preflight step makes before an update builds.
  for (const d of [paths.stagingRoot, paths.releases]) await mkdir(d, { recursive: true })
  try {
    await build.run(ctx)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  return j.to.release!
}
