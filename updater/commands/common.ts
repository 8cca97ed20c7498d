import { createInterface } from 'node:readline/promises'
import { chmod, copyFile, mkdir, rename } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import type { AppDefinition } from '../shared/apps/definition'
import { createRegistry, type Registry } from '../shared/apps/registry'
import type { Config } from '../shared/config'
import { isUpdateError } from '../shared/errors'
import { createLogger, type Logger } from '../shared/log'
import { UPKEEP_APP } from '../shared/paths'
import { loadConfigOrExit } from '../shared/runtime'
import { currentBuild, isBuilt } from '../shared/version'
import { isRoot } from '../adapters/fs'
import { runWorker } from '../broker/spawn-worker'
import { print } from '../console-status'

/** Exit codes: 0 complete (or nothing to do), 1 failed, 2 usage, 3 rolled back. */
export const EXIT = { ok: 0, failed: 1, usage: 2, rolledBack: 3 } as const

/** A wrong invocation: reported with the command's usage, exit 2, never a stack trace. */
export class UsageError extends Error {
  override name = 'UsageError'
}

/** parseArgs whose complaints are usage errors. */
export function parseOptions<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true })
  } catch (err) {
    throw new UsageError(err instanceof Error ? usageReason(err.message) : String(err))
  }
}

/** parseArgs' complaint as one line, without its advice on `--` (which no command here needs). */
export function usageReason(message: string): string {
  return message
    .replace(/^TypeError \[[A-Z_]+\]: /, '')
    .replace(/\. To specify a positional argument starting with a '-'.*$/s, '')
    .split('\n')
    .filter(Boolean)
    .join(' ')
}

/** The module the `upkeep` command runs from (the bundle, or updater/cli.ts through tsx). */
const HERE = import.meta.url

export interface CommandContext {
  config: Config
  registry: Registry
  app: AppDefinition
  log: Logger
}

/** Configuration, the apps, and the one this command is about (`--app`, default Upkeep). */
export async function loadCommandContext(appName: string | undefined, opts: { quiet?: boolean } = {}): Promise<CommandContext> {
  const config = loadConfigOrExit(process.env, HERE)
  const registry = createRegistry(config)
  const app = await registry.get(appName ?? UPKEEP_APP)
  const log = createLogger({ level: opts.quiet && !process.env.LOG_LEVEL?.trim() ? 'fatal' : config.logLevel, name: 'upkeep', fd: 2 })
  return { config, registry, app, log }
}

/** First SIGINT/SIGTERM: stop the step and fail or roll back cleanly. Second: leave at once (recovery takes over). */
export function interruptSignal(): AbortSignal {
  const ac = new AbortController()
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (ac.signal.aborted) process.exit(130)
      process.stderr.write(`upkeep: ${sig}: stopping the update (again to quit at once; \`upkeep recover\` then finishes it)\n`)
      ac.abort()
    })
  }
  return ac.signal
}

/** Reports an UpdateError (exit 1); anything else is a bug and propagates. */
export function fail(err: unknown, json: boolean): number {
  if (isUpdateError(err)) {
    if (json) print(JSON.stringify({ error: err.toJSON() }))
    else process.stderr.write(`upkeep: ${err.code}: ${err.message}${err.hint ? `\n  hint: ${err.hint}` : ''}\n`)
    return EXIT.failed
  }
  throw err
}

/**
 * Where the updater keeps copies of its own bundle: root's own directory under systemd (root
 * runs them; nothing another user can write), else the checkout's `.upkeep/updater`.
 */
export function copiesDir(config: Config): string {
  return isRoot() ? path.join(config.stateDir, '.updater') : path.join(config.appDir, '.upkeep', 'updater')
}

/** Where this run's copies are: the directory runFromCopy used (it says so to the copy), else the default. */
export function currentCopiesDir(config: Config): string {
  return process.env.UPKEEP_UPDATER_COPIES || copiesDir(config)
}

export function copyPath(dir: string, version: string): string {
  return path.join(dir, `upkeep-${version.replace(/[^0-9A-Za-z.+-]/g, '_')}.mjs`)
}

/**
 * Built, the updater copies its bundle away from the checkout and runs the copy, so switching
 * `current` or pruning the old release cannot change the code mid-update. From the sources it
 * runs as is. Returns the copy's exit code, or undefined when this process is to do the work.
 */
export async function runFromCopy(config: Config, argv: string[]): Promise<number | undefined> {
  if (!isBuilt() || process.env.UPKEEP_RUNNING_COPY === '1') return undefined
  const self = fileURLToPath(HERE)
  let dir = copiesDir(config)
  if (self.startsWith(dir + path.sep) || self.startsWith(path.join(config.appDir, '.upkeep', 'updater') + path.sep)) return undefined
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 })
  } catch (err) {
    // Units an older install.sh rendered let root write the checkout, not the state root.
    if (!['EROFS', 'EACCES', 'EPERM'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err
    dir = path.join(config.appDir, '.upkeep', 'updater')
    await mkdir(dir, { recursive: true, mode: 0o755 })
  }
  // Readable by the apps' users: their updates run this code as them.
  await chmod(dir, 0o755)
  const run = copyPath(dir, currentBuild().version)
  await copyFile(self, `${run}.tmp`)
  await chmod(`${run}.tmp`, 0o644)
  await rename(`${run}.tmp`, run)
  const { spawn } = await import('node:child_process')
  const child = spawn(process.execPath, [run, ...argv], { stdio: 'inherit', env: { ...process.env, UPKEEP_RUNNING_COPY: '1', UPKEEP_UPDATER_COPIES: dir } })
  // The copy gets the signals itself (same process group); this process only waits for it.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => {})
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))))
}

/**
 * Runs a worker command for the app: in this very process when it already is the app's user and
 * nothing needs root (no systemd), else in a worker process started as the app's user.
 */
export async function dispatch(ctx: CommandContext, args: string[], inProcess: (args: string[]) => Promise<number>): Promise<number> {
  if (!isRoot() && ctx.config.serviceManager === 'process') return inProcess(args)
  return runWorker({ config: ctx.config, app: ctx.app, args, log: ctx.log, copiesDir: currentCopiesDir(ctx.config), mirrorSignal: true })
}

/** Asks a yes/no question on the terminal; anything but y or yes is no. */
export async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stdout })
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim())
  } finally {
    rl.close()
  }
}
