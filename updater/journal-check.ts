import path from 'node:path'
import type { Journal } from './shared/journal'
import type { AppPaths } from './shared/paths'

/**
 * Why a journal is not one this updater could have written for this app, or undefined when it
 * could be. Upkeep's own journal sits in its data dir, which its server can write: a forged one
 * must not make the updater point `current` (which root runs) at the server's files, or move
 * anything outside the checkout. Pure.
 */
export function journalProblem(j: Journal, paths: Pick<AppPaths, 'releases' | 'stagingRoot' | 'appDir'>): string | undefined {
  const inside = (dir: string, p: string | undefined) => p === undefined || (path.isAbsolute(p) && path.dirname(path.normalize(p)) === dir && !p.split('/').includes('..'))
  const plain = (names: string[] | undefined) => (names ?? []).every((n) => typeof n === 'string' && /^[^/\0]+$/.test(n) && n !== '.' && n !== '..' && n !== '.git' && n !== '.upkeep')
  if (!inside(paths.releases, j.from.release)) return `from.release ${j.from.release} is not a release directory of ${paths.appDir}`
  if (!inside(paths.releases, j.from.bak)) return `from.bak ${j.from.bak} is not a release directory of ${paths.appDir}`
  if (!inside(paths.releases, j.to.release)) return `to.release ${j.to.release} is not a release directory of ${paths.appDir}`
  if (!inside(paths.stagingRoot, j.to.staging)) return `to.staging ${j.to.staging} is not a staging directory of ${paths.appDir}`
  if (!plain(j.to.outputs) || !plain(j.movedAside)) return 'the build entries it names are not plain names in the checkout'
  if (j.to.release && !path.basename(j.to.release).startsWith(j.to.tag)) return `to.release ${j.to.release} is not a build of ${j.to.tag}`
  return undefined
}
