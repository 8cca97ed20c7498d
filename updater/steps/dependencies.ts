import { utimes } from 'node:fs/promises'
import type { DependenciesDefinition } from '../shared/apps/definition'
import { findCachedDependencies, reuseDependencies, saveDependencies } from '../artifacts/dependency-reuse'
import type { StepContext } from '../context'

/** Dependency installs kept for reuse: the running release's, the one before, and one more. */
export const DEPENDENCY_CACHE_KEEP = 3

export interface DependencyOutcome {
  how: 'reused' | 'installed'
  /** reflink, hardlink or copy, when reused. */
  method?: string
  /** Why an install was needed. */
  reason?: string
  durationMs: number
}

/**
 * A source build's dependencies: copied from an earlier install whose lockfiles are byte-identical
 * (the cache in `.upkeep/deps`), else installed with the definition's command and kept for the
 * next build. Reuse is only a shortcut: anything in its way means a fresh install.
 */
export async function provideDependencies(
  ctx: StepContext,
  spec: DependenciesDefinition,
  staging: string,
  install: () => Promise<void>,
): Promise<DependencyOutcome> {
  const { paths } = ctx
  const run = ctx.artifacts.run
  const log = (message: string, level: 'info' | 'warn' = 'info') => void ctx.emit({ type: 'log', level, step: 'build', message })
  const t0 = performance.now()
  const took = () => Math.round(performance.now() - t0)
  const lockfiles = spec.lockfiles.join(', ')
  const entry = await findCachedDependencies(paths.dependencyCache, staging, spec)
  let reason = entry ? '' : `no earlier install of this ${lockfiles}`
  if (entry) {
    const r = await reuseDependencies(run, { ...spec, previousTree: entry, stagingTree: staging })
    if (r.reused) {
      const now = ctx.clock.now()
      await utimes(entry, now, now).catch(() => {})
      log(`${lockfiles} unchanged: reusing the installed ${spec.dirs.join(', ')} (${r.method}) instead of ${spec.install.join(' ')}`)
      return { how: 'reused', method: r.method, durationMs: took() }
    }
    reason = r.reason
  }
  log(`installing dependencies: ${reason}`)
  await install()
  try {
    await saveDependencies(run, { ...spec, stagingTree: staging, cacheDir: paths.dependencyCache, keep: DEPENDENCY_CACHE_KEEP, now: ctx.clock.now() })
  } catch (err) {
    log(`could not keep the installed dependencies for the next build: ${(err as Error).message}`, 'warn')
  }
  return { how: 'installed', reason, durationMs: took() }
}
