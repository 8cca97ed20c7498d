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
  /** The server's unit. Default `upkeep.service`. */
  unit?: string
  /** The socket unit that activates it (stopped with it, reset with it). Default `upkeep.socket`; `null` for none. */
  socket?: string | null
  run?: RunCommand
  /** How long one systemctl call may take; a restart waits for the server's drain (TimeoutStopSec=). Default 60 s. */
  timeoutMs?: number
}

const ACTIVE_STATES: readonly ServiceState['active'][] = ['active', 'activating', 'deactivating', 'inactive', 'failed', 'reloading']
const STATE_PROPERTIES = 'ActiveState,SubState,MainPID,NRestarts,ExecMainStatus,ExecMainCode,LoadState'
// ExecMainCode is a waitid() si_code: CLD_EXITED, CLD_KILLED, CLD_DUMPED.
const CLD_EXITED = 1
const CLD_KILLED = 2
const CLD_DUMPED = 3

/**
 * The ServiceManager for production: `systemctl` and `journalctl` on the server's unit. The
 * updater runs in a unit of its own (upkeep-updater.service), so restarting the server's unit
 * never kills the updater.
 */
export function createSystemd(opts: SystemdOptions = {}): ServiceManager {
  const unit = opts.unit ?? 'upkeep.service'
  const socket = opts.socket === undefined ? 'upkeep.socket' : opts.socket
  const run = opts.run ?? runWithExeca
  const timeoutMs = opts.timeoutMs ?? 60_000
  const units = socket ? [unit, socket] : [unit]
  /** Journal position just before our last start/restart: recentLogs() shows what came after. */
  let startCursor: string | undefined

  const exec = async (file: string, args: string[]): Promise<CommandResult> => {
    try {
      return await run(file, args, { timeoutMs })
    } catch (err) {
      throw new UpdateError('RESTART_FAILED', `cannot run ${file}: ${err instanceof Error ? err.message : String(err)}`, {
        hint: 'Upkeep with UPKEEP_SERVICE_MANAGER=systemd needs systemctl and journalctl on PATH.',
        cause: err,
      })
    }
  }

  const systemctl = async (verb: string, names: string[]): Promise<void> => {
    const r = await exec('systemctl', [verb, ...names])
    if (r.exitCode === 0) return
    const what = (r.stderr || r.stdout).trim() || `exit status ${r.exitCode}`
    throw new UpdateError('RESTART_FAILED', `systemctl ${verb} ${names.join(' ')} failed: ${what}`, {
      hint: r.exitCode === 5 ? `Is Upkeep installed? ${unit} is not loaded (install.sh installs it).` : `See why: systemctl status ${unit}; journalctl -u ${unit} -e`,
    })
  }

  const markStart = async (): Promise<void> => {
    const r = await exec('journalctl', ['--no-pager', '-q', '-n', '0', '--show-cursor'])
    startCursor = /^-- cursor: (.+)$/m.exec(r.stdout)?.[1]?.trim() ?? startCursor
  }

  // A unit that hit its start limit (a crash-looping release) refuses every start until it is
  // reset, and its socket fails with it: the rollback's start must not be refused for that.
  const resetFailed = async (): Promise<void> => {
    await exec('systemctl', ['reset-failed', ...units])
  }

  return {
    kind: 'systemd',

    async restart() {
      await markStart()
      await resetFailed()
      // The socket stays open across the restart (Requires= starts it if it was down), so
      // connections made meanwhile wait in its queue instead of being refused.
      await systemctl('restart', [unit])
    },

    async start() {
      await markStart()
      await resetFailed()
      await systemctl('start', [unit])
    },

    async stop() {
      // The socket too: a connection to a listening socket would start the server again.
      await systemctl('stop', socket ? [socket, unit] : [unit])
    },

    async state() {
      const r = await exec('systemctl', ['show', '-p', STATE_PROPERTIES, unit])
      if (r.exitCode !== 0) {
        throw new UpdateError('RESTART_FAILED', `cannot read the state of ${unit}: ${(r.stderr || r.stdout).trim()}`, {
          hint: 'Is systemd running? systemctl is-system-running',
        })
      }
      return parseServiceState(r.stdout)
    },

    async recentLogs(lines = 50) {
      const args = ['--no-pager', '-q', '-u', unit, '-o', 'short-iso', '-n', String(lines)]
      if (startCursor) args.push('--after-cursor', startCursor)
      const r = await exec('journalctl', args)
      return r.stdout.split('\n').filter((l) => l.trim() !== '')
    },
  }
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
    active,
    // A unit systemd does not know reads as inactive/dead; say why instead.
    subState: p.get('LoadState') === 'not-found' ? 'not-found' : (p.get('SubState') ?? ''),
    mainPid: mainPid ? mainPid : undefined,
    restarts: num('NRestarts') ?? 0,
    exitStatus,
  }
}

const runWithExeca: RunCommand = async (file, args, { timeoutMs }) => {
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
