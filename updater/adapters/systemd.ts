import { execa } from 'execa'
import { UpdateError } from '../shared/errors'
import type { ServiceManager, ServiceState } from './service-manager'

/** What a command printed and how it ended; a non-zero exit is a result, not an exception. */
export interface CommandResult {
  exitCode: number
  stdout: string
  stderr: string
}

/** Runs `file args`: execa in production, a runner inside a systemd sandbox in tests. */
export type RunCommand = (file: string, args: string[], opts: { timeoutMs: number }) => Promise<CommandResult>

export interface SystemdOptions {
  /** The app's units, restarted in this order (stopped in reverse). Default `upkeep.service`. */
  units?: string[]
  /** Socket units holding the units' listening sockets: never restarted, stopped and reset with the units. Default `upkeep.socket`. */
  sockets?: string[]
  run?: RunCommand
  /** How long one systemctl call may take; a restart waits for the server's drain (TimeoutStopSec=). Default 60 s. */
  timeoutMs?: number
}

const ACTIVE_STATES: readonly ServiceState['active'][] = ['active', 'activating', 'deactivating', 'inactive', 'failed', 'reloading']
const STATE_PROPERTIES = 'Id,ActiveState,SubState,MainPID,NRestarts,ExecMainStatus,ExecMainCode,LoadState'
// ExecMainCode is a waitid() si_code: CLD_EXITED, CLD_KILLED, CLD_DUMPED.
const CLD_EXITED = 1
const CLD_KILLED = 2
const CLD_DUMPED = 3

/**
 * The ServiceManager for production: `systemctl` and `journalctl` on the app's units. The
 * updater runs in a unit of its own (upkeep-updater.service), so restarting an app's units
 * (Upkeep's own included) never kills the updater.
 */
export function createSystemd(opts: SystemdOptions = {}): ServiceManager {
  const units = opts.units ?? ['upkeep.service']
  const sockets = opts.sockets ?? (opts.units ? [] : ['upkeep.socket'])
  const run = opts.run ?? runWithExeca
  const timeoutMs = opts.timeoutMs ?? 60_000
  const all = [...units, ...sockets]
  /** Journal position just before our last start/restart: recentLogs() shows what came after. */
  let startCursor: string | undefined

  const exec = async (file: string, args: string[]): Promise<CommandResult> => {
    try {
      return await run(file, args, { timeoutMs })
    } catch (err) {
      throw new UpdateError('RESTART_FAILED', `cannot run ${file}: ${err instanceof Error ? err.message : String(err)}`, {
        hint: 'The systemd service manager needs systemctl and journalctl on PATH.',
        cause: err,
      })
    }
  }

  const systemctl = async (verb: string, names: string[]): Promise<void> => {
    const r = await exec('systemctl', [verb, ...names])
    if (r.exitCode === 0) return
    const what = (r.stderr || r.stdout).trim() || `exit status ${r.exitCode}`
    throw new UpdateError('RESTART_FAILED', `systemctl ${verb} ${names.join(' ')} failed: ${what}`, {
      hint: r.exitCode === 5 ? `Is the unit installed? ${names.join(', ')} is not loaded (systemctl list-unit-files ${names[0]}).` : `See why: systemctl status ${names[0]}; journalctl -u ${names[0]} -e`,
    })
  }

  const markStart = async (): Promise<void> => {
    const r = await exec('journalctl', ['--no-pager', '-q', '-n', '0', '--show-cursor'])
    startCursor = /^-- cursor: (.+)$/m.exec(r.stdout)?.[1]?.trim() ?? startCursor
  }

  // A unit that hit its start limit (a crash-looping release) refuses every start until it is
  // reset, and its socket fails with it: the rollback's start must not be refused for that.
  const resetFailed = async (): Promise<void> => {
    await exec('systemctl', ['reset-failed', ...all])
  }

  return {
    kind: 'systemd',
    units,

    async restart() {
      await markStart()
      await resetFailed()
      // In order: a frontend restarts after the backend it talks to. Sockets stay open across the
      // restart (Requires= starts them if they were down): connections wait in their queue.
      for (const unit of units) await systemctl('restart', [unit])
    },

    async start() {
      await markStart()
      await resetFailed()
      for (const unit of units) await systemctl('start', [unit])
    },

    async stop() {
      // The sockets too: a connection to a listening socket would start the app again.
      await systemctl('stop', [...sockets, ...[...units].reverse()])
    },

    async state() {
      const r = await exec('systemctl', ['show', '-p', STATE_PROPERTIES, ...units])
      if (r.exitCode !== 0) {
        throw new UpdateError('RESTART_FAILED', `cannot read the state of ${units.join(', ')}: ${(r.stderr || r.stdout).trim()}`, {
          hint: 'Is systemd running? systemctl is-system-running',
        })
      }
      return combineStates(r.stdout.split(/\n\s*\n/).filter((b) => b.trim()).map(parseServiceState))
    },

    async recentLogs(lines = 50) {
      const args = ['--no-pager', '-q', ...units.flatMap((u) => ['-u', u]), '-o', 'short-iso', '-n', String(lines)]
      if (startCursor) args.push('--after-cursor', startCursor)
      const r = await exec('journalctl', args)
      return r.stdout.split('\n').filter((l) => l.trim() !== '')
    },
  }
}

const BADNESS: Record<ServiceState['active'], number> = { failed: 6, unknown: 5, inactive: 4, deactivating: 3, activating: 2, reloading: 1, active: 0 }

/** Several units as one: the worst of them speaks for all (a failed frontend fails the app). Pure. */
export function combineStates(states: ServiceState[]): ServiceState {
  if (!states.length) return { active: 'unknown', subState: 'none', mainPid: undefined, restarts: 0, exitStatus: undefined }
  const worst = states.reduce((w, s) => (BADNESS[s.active] > BADNESS[w.active] || (s.subState === 'auto-restart' && w.subState !== 'auto-restart') ? s : w))
  return { ...worst, mainPid: states[0]!.mainPid, restarts: states.reduce((n, s) => n + s.restarts, 0) }
}

/** `systemctl show -p …` output (KEY=VALUE lines, in any order) → ServiceState. Pure. */
export function parseServiceState(show: string): ServiceState {
  const p = new Map<string, string>()
  for (const line of show.split('\n')) {
    const i = line.indexOf('=')
    if (i > 0) p.set(line.slice(0, i), line.slice(i + 1).trim())
  }
  const num = (key: string): number | undefined => {
    const v = p.get(key)
    return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined
  }
  const activeRaw = p.get('ActiveState') ?? ''
  const active = (ACTIVE_STATES as readonly string[]).includes(activeRaw) ? (activeRaw as ServiceState['active']) : 'unknown'
  const mainPid = num('MainPID')
  const code = num('ExecMainCode')
  const status = num('ExecMainStatus')
  // Killed by a signal: report it the way a shell does (128 + signal number).
  const exitStatus = status === undefined ? undefined : code === CLD_EXITED ? status : code === CLD_KILLED || code === CLD_DUMPED ? 128 + status : undefined
  return {
    ...(p.get('Id') ? { unit: p.get('Id') } : {}),
    active,
    // A unit systemd does not know reads as inactive/dead; say why instead.
    subState: p.get('LoadState') === 'not-found' ? 'not-found' : (p.get('SubState') ?? ''),
    mainPid: mainPid ? mainPid : undefined,
    restarts: num('NRestarts') ?? 0,
    exitStatus,
  }
}

/** The real RunCommand: plain, stable output (no pager, no colours, C locale). */
export const runWithExeca: RunCommand = async (file, args, { timeoutMs }) => {
  const r = await execa(file, args, {
    reject: false,
    timeout: timeoutMs,
    // Plain, stable output: no pager, no colours, no localized words.
    env: { SYSTEMD_PAGER: '', SYSTEMD_COLORS: '0', LC_ALL: 'C' },
    stdin: 'ignore',
  })
  if (r.failed && r.exitCode === undefined) throw new Error(r.timedOut ? `timed out after ${timeoutMs} ms` : r.shortMessage)
  return { exitCode: r.exitCode ?? 1, stdout: r.stdout, stderr: r.stderr }
}
