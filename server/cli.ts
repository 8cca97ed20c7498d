import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ConfigError, parseConfig, type Config, type Env } from '../updater/shared/config'
import { isUpdateError } from '../updater/shared/errors'
import { installedFromText } from '../updater/shared/installed-from'
import { createLogger, silentLogger } from '../updater/shared/log'
import { findCheckoutRoot, UPKEEP_APP } from '../updater/shared/paths'
import { resolveBuildInfo } from '../updater/shared/runtime'
import type { Clock } from '../updater/shared/clock'
import { createServerServices } from './services/create-services'
import type { OriginGit } from './services/origin-git'
import { setAdminPassword, verifyPasswordStrength } from './services/password'
import type { UpdatesStatus } from './services/updates'
import type { AutoUpdatePolicy } from './services/auto-update/policy'
import type { AutoUpdateView } from './services/auto-update/service'

// The server's side of the `upkeep` command: `status`, `check`, `set-password`. updater/cli.ts
// imports this module at run time (built: server-cli.mjs), so the updater bundle holds no server code.

export interface CliIo {
  env: Env
  stdout: { write(s: string): unknown }
  stderr: { write(s: string): unknown }
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?(raw: boolean): unknown }
  /** Where the config's default APP_DIR is looked for (the checkout this module sits in). */
  moduleUrl?: string
}

/** Seams for tests; the real ones are built here otherwise. */
export interface CliDeps {
  fetch?: typeof fetch
  clock?: Clock
  git?: OriginGit
}

export const SERVER_COMMANDS = ['status', 'check', 'set-password', 'pause', 'resume'] as const
export type ServerCommand = (typeof SERVER_COMMANDS)[number]

/** Each command's usage line, as `upkeep <command> --help` prints it (updater/cli.ts). */
export const SERVER_USAGE: Record<ServerCommand, string> = {
  status: 'upkeep status [--json]',
  check: 'upkeep check [--json]',
  'set-password': 'upkeep set-password [--password-stdin]',
  pause: 'upkeep pause',
  resume: 'upkeep resume',
}

class UsageError extends Error {}

const processIo = (): CliIo => ({ env: process.env, stdout: process.stdout, stderr: process.stderr, stdin: process.stdin })

/** Runs one server-side command; returns the exit code (0 ok, 1 failed, 2 bad usage or config). */
export async function runServerCommand(name: string, args: string[], io: CliIo = processIo(), deps: CliDeps = {}): Promise<number> {
  try {
    switch (name) {
      case 'status':
      case 'check':
        return await statusCommand(name, args, io, deps)
      case 'set-password':
        return await setPasswordCommand(args, io, deps)
      case 'pause':
      case 'resume':
        return await pauseCommand(name, args, io, deps)
      default:
        throw new UsageError(`unknown command "${name}"`)
    }
  } catch (err) {
    if (err instanceof UsageError) {
      const usage = (SERVER_USAGE as Record<string, string>)[name]
      io.stderr.write(`upkeep ${name}: ${err.message}\n\n${usage ? `Usage: ${usage}\n(upkeep ${name} --help for more)` : `Run \`upkeep --help\` for the commands.`}\n`)
      return 2
    }
    if (err instanceof ConfigError) {
      for (const p of err.problems) io.stderr.write(`upkeep: invalid ${p.variable}: ${p.message}\n`)
      return 2
    }
    if (isUpdateError(err)) {
      io.stderr.write(`upkeep ${name}: ${err.message}\n${err.hint ? `hint: ${err.hint}\n` : ''}`)
      return 1
    }
    throw err
  }
}

function options<T extends Record<string, { type: 'boolean' | 'string' }>>(args: string[], spec: T) {
  try {
    return parseArgs({ args, options: spec, allowPositionals: false, strict: true }).values
  } catch (err) {
    // parseArgs' advice on `--` does not apply: these commands take no arguments.
    throw new UsageError(err instanceof Error ? err.message.replace(/\. To specify a positional argument starting with a '-'.*$/s, '').split('\n').filter(Boolean).join(' ') : String(err))
  }
}

function loadConfig(io: CliIo): Config {
  const here = path.dirname(fileURLToPath(io.moduleUrl ?? import.meta.url))
  return parseConfig(io.env, { appDir: findCheckoutRoot(here) ?? process.cwd(), cwd: process.cwd() })
}

async function services(io: CliIo, deps: CliDeps) {
  const config = loadConfig(io)
  // Problems end up in the status itself; debug logs go to stderr when asked for.
  const log = config.logLevel === 'debug' || config.logLevel === 'trace' ? createLogger({ level: config.logLevel, fd: 2 }) : silentLogger()
  const build = resolveBuildInfo(config.appDir)
  return { config, ...(await createServerServices({ config, log, build, ...deps })) }
}

async function statusCommand(name: 'status' | 'check', args: string[], io: CliIo, deps: CliDeps): Promise<number> {
  const { json, app } = options(args, { json: { type: 'boolean' }, app: { type: 'string' } })
  const s = await services(io, deps)
  const updates = app ? (await s.apps.get(app)).updates : s.updates
  const status = name === 'check' ? await updates.check() : await updates.status()
  // What the policy makes of it; a status is still printed when that cannot be worked out.
  const auto = json ? undefined : await s.autoUpdate.view(app ?? UPKEEP_APP).catch(() => undefined)
  io.stdout.write(json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status, s.clock.now(), auto))
  // `check` fails when the check did; `status` reports whatever it knows.
  return name === 'check' && status.error ? 1 : 0
}

const SOURCE_NAMES = { env: 'UPDATE_REPO', setting: 'stored setting', origin: 'git remote origin', definition: 'app definition' } as const

const MODE_TEXT: Record<AutoUpdatePolicy['mode'], string> = {
  off: 'off: nothing installs itself',
  notify: 'notify only: new releases are announced, none installs itself',
  patch: 'patch releases install themselves',
  minor: 'minor and patch releases install themselves',
  all: 'every newer release installs itself',
}

/** The policy, its window and why an available release has not installed itself, as status lines. Pure. */
function autoUpdateLines(v: AutoUpdateView, now: Date): [string, string][] {
  const p = v.policy
  const lines: [string, string][] = []
  const facts = [
    MODE_TEXT[p.mode],
    ...(p.mode === 'off' || p.mode === 'notify' ? [] : [`at least ${p.minReleaseAgeHours} h after release`]),
    ...(p.channel === 'prerelease' ? ['prereleases too'] : []),
    ...(p.skip.length ? [`skipping ${p.skip.join(', ')}`] : []),
  ]
  lines.push(['Policy', facts.join('; ')])
  if (p.window) {
    const next = v.decision.nextWindowAt ? `; next opens ${clockTime(v.decision.nextWindowAt)} (${timeUntil(v.decision.nextWindowAt, now)})` : '; it never opens again'
    lines.push(['Window', `${p.window.calendar} for ${p.window.durationMinutes} min${next}`])
  } else if (p.mode !== 'off' && p.mode !== 'notify') lines.push(['Window', 'none: at any time'])
  const paused = v.pausedAll ? 'paused for all apps (`upkeep resume`)' : p.paused ? `paused (\`upkeep resume${v.app === UPKEEP_APP ? '' : ` --app ${v.app}`}\`)` : undefined
  if (paused) lines.push(['Paused', paused])
  lines.push(['Automatic', v.decision.reason.text])
  for (const o of v.decision.passedOver) lines.push(['', `${o.version}: ${o.reason.text}`])
  return lines
}

function timeUntil(iso: string, now: Date): string {
  const min = Math.round((Date.parse(iso) - now.getTime()) / 60_000)
  if (min < 1) return 'now'
  if (min < 120) return `in ${min} min`
  const h = Math.round(min / 60)
  return h < 48 ? `in ${h} h` : `in ${Math.round(h / 24)} days`
}

/** The human form of a status: short lines a person reads at a glance. Pure. */
export function formatStatus(s: UpdatesStatus, now: Date, auto?: AutoUpdateView): string {
  const lines: [string, string][] = []
  const commit = s.current.commit !== 'unknown' ? ` (${s.current.commit.slice(0, 7)})` : ''
  lines.push(['Running', `${s.current.version}${commit}`])
  if (s.current.installedFrom) lines.push(['Installed from', installedFromText(s.current.installedFrom)])
  if (s.source) lines.push(['Releases from', `${s.source.repo} (${SOURCE_NAMES[s.source.from]}), channel ${s.channel}`])
  if (s.latest) {
    const published = s.latest.publishedAt ? `, published ${s.latest.publishedAt.slice(0, 10)}` : ''
    lines.push(['Latest', `${s.latest.version}${s.latest.name && s.latest.name !== s.latest.tag ? ` "${s.latest.name}"` : ''}${published}${s.via === 'git' ? ' (from git tags)' : ''}`])
  } else if (s.source && s.checkedAt) {
    lines.push(['Latest', 'no release found'])
  }
  if (s.latest) {
    lines.push(['Update', s.updateAvailable ? `available: ${s.current.version} → ${s.latest.version} (${s.latest.url})` : 'none, this is the latest'])
  }
  if (s.running) {
    const what = s.running.state === 'requested' ? 'requested' : s.running.state === 'interrupted' ? 'interrupted (`upkeep recover` finishes it)' : 'in progress'
    const span = s.running.from || s.running.to ? `: ${s.running.from ?? '?'} → ${s.running.to ?? 'latest'}` : ''
    lines.push(['Updating', `${what}${span}${s.running.updateId ? ` (${s.running.updateId})` : ''}`])
  }
  if (auto) lines.push(...autoUpdateLines(auto, now))
  if (s.checksDisabled) lines.push(['Checks', 'disabled (UPDATE_CHECK_DISABLED=true); GitHub is never asked'])
  else if (!s.checkEnabled) lines.push(['Checks', 'automatic checks are off (setting); `upkeep check` checks now'])
  if (s.checkedAt) {
    const next = s.nextCheckAt && !s.checksDisabled ? `; next check ${s.nextCheckAt <= now.toISOString() ? 'now' : `after ${clockTime(s.nextCheckAt)}`}` : ''
    lines.push(['Checked', `${clockTime(s.checkedAt)} (${ago(s.checkedAt, now)})${next}`])
  } else if (s.source && !s.checksDisabled) {
    lines.push(['Checked', 'never'])
  }
  if (s.error) {
    lines.push(['Problem', s.error.message])
    if (s.error.hint) lines.push(['', `hint: ${s.error.hint}`])
  }
  const width = Math.max(...lines.map(([k]) => k.length)) + 2
  return lines.map(([k, v]) => `${k ? `${k}:` : ''}`.padEnd(width) + v).join('\n') + '\n'
}

function clockTime(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`
}

function ago(iso: string, now: Date): string {
  const min = Math.round((now.getTime() - Date.parse(iso)) / 60_000)
  if (min < 1) return 'just now'
  if (min < 120) return `${min} min ago`
  const h = Math.round(min / 60)
  return h < 48 ? `${h} h ago` : `${Math.round(h / 24)} days ago`
}

/** `upkeep pause|resume [--app NAME]`: the switch of one app, or (without --app) the one for all apps. */
async function pauseCommand(name: 'pause' | 'resume', args: string[], io: CliIo, deps: CliDeps): Promise<number> {
  const { app } = options(args, { app: { type: 'string' } })
  const s = await services(io, deps)
  await mkdir(s.config.dataDir, { recursive: true })
  const paused = name === 'pause'
  const after = await s.autoUpdate.setPaused(paused, app)
  const who = app ? `of ${app}` : 'of every app'
  const other = app ? `upkeep ${paused ? 'resume' : 'pause'} --app ${app}` : `upkeep ${paused ? 'resume' : 'pause'}`
  io.stdout.write(`Automatic updates ${who} are ${paused ? 'paused' : 'resumed'}; \`${other}\` ${paused ? 'resumes' : 'pauses'} them.\n`)
  // A resume of one switch does not lift the other: say what still holds updates back.
  if (!paused) {
    const still = Object.entries(after.apps).filter(([n, a]) => a.policy.paused && n !== app).map(([n]) => n)
    if (app && after.paused) io.stdout.write('They stay paused for now: automatic updates of all apps are paused (`upkeep resume`).\n')
    if (!app && still.length) io.stdout.write(`Still paused on their own: ${still.join(', ')} (\`upkeep resume --app NAME\`).\n`)
  }
  return 0
}

async function setPasswordCommand(args: string[], io: CliIo, deps: CliDeps): Promise<number> {
  const { 'password-stdin': fromStdin } = options(args, { 'password-stdin': { type: 'boolean' } })
  const s = await services(io, deps)
  let password: string
  if (fromStdin) {
    password = (await readAll(io.stdin)).split(/\r?\n/)[0] ?? ''
  } else if (io.stdin.isTTY && io.stdin.setRawMode) {
    password = await readHidden('New admin password: ', io)
    verifyPasswordStrength(password)
    if ((await readHidden('Repeat it: ', io)) !== password) {
      io.stderr.write('upkeep set-password: the passwords differ; nothing changed\n')
      return 1
    }
  } else {
    throw new UsageError('stdin is not a terminal: pipe the password in with --password-stdin')
  }
  verifyPasswordStrength(password)
  await mkdir(s.config.dataDir, { recursive: true })
  await setAdminPassword(s.paths.adminPassword, password, { clock: s.clock, write: s.write })
  io.stdout.write('Admin password changed. Every session is signed out; log in again with the new password.\n')
  return 0
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = ''
  for await (const chunk of stream) text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')
  return text
}

class Cancelled extends Error {}

/** Reads a line from the terminal without echoing it (raw mode; backspace and Ctrl-U edit, Ctrl-C cancels). */
function readHidden(prompt: string, io: CliIo): Promise<string> {
  const { stdin, stderr } = io
  // Raw mode (no echo) before the prompt: whatever is typed once the prompt shows must not echo.
  stdin.setRawMode!(true)
  stdin.setEncoding('utf8')
  stdin.resume()
  stderr.write(prompt)
  return new Promise((resolve, reject) => {
    let value = ''
    const finish = () => {
      stdin.off('data', onData)
      stdin.setRawMode!(false)
      stdin.pause()
      stderr.write('\n')
    }
    const onData = (chunk: string | Buffer) => {
      for (const ch of String(chunk)) {
        if (ch === '\r' || ch === '\n') {
          finish()
          return resolve(value)
        }
        if (ch === '\u0003' || (ch === '\u0004' && !value)) {
          finish()
          return reject(new Cancelled('cancelled'))
        }
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('')
        else if (ch === '\u0015') value = ''
        else if (ch >= ' ') value += ch
      }
    }
    stdin.on('data', onData)
  }).catch((err) => {
    if (err instanceof Cancelled) throw new UsageError('cancelled; nothing changed')
    throw err
  }) as Promise<string>
}
