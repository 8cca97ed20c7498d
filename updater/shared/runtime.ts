import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { ConfigError, parseConfig, type Config, type Env } from './config'
import { findCheckoutRoot } from './paths'
import { currentBuild, isBuilt, type BuildInfo } from './version'

/**
 * Where the running code came from: the directory holding the bundles and `web/` when built,
 * `<checkout>/build` (what `npm run build:web` fills) when run from sources.
 */
export function bundleDir(moduleUrl: string): string {
  const here = path.dirname(fileURLToPath(moduleUrl))
  if (isBuilt()) return here
  return path.join(findCheckoutRoot(here) ?? process.cwd(), 'build')
}

/** Reads the config from the environment, or prints what is wrong and exits 2. */
export function loadConfigOrExit(env: Env, moduleUrl: string): Config {
  const here = path.dirname(fileURLToPath(moduleUrl))
  try {
    return parseConfig(env, { appDir: findCheckoutRoot(here) ?? process.cwd(), cwd: process.cwd() })
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const p of err.problems) process.stderr.write(`upkeep: invalid ${p.variable}: ${p.message}\n`)
      process.exit(2)
    }
    throw err
  }
}

/** The build's version and commit; unbuilt, the commit is read from the checkout. */
export function resolveBuildInfo(appDir: string): BuildInfo {
  const build = currentBuild()
  if (build.commit !== 'unknown') return build
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: appDir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    return { ...build, commit }
  } catch {
    return build
  }
}
