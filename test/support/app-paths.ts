import path from 'node:path'
import { createAppPaths, createManagerPaths, type AppPaths } from '../../updater/shared/paths'

/** Paths of an app checked out at `dir` (Upkeep itself by default: its state in `dir/data`). */
export function appPathsIn(dir: string, name = 'upkeep'): AppPaths {
  const manager = createManagerPaths({ appDir: dir, dataDir: path.join(dir, 'data'), stateDir: path.join(dir, 'state'), appsDir: path.join(dir, 'apps') })
  return createAppPaths({ name, checkout: dir, data: { paths: [path.join(dir, 'data')], backupDir: path.join(dir, 'backups') } }, manager)
}
