/**
 * The seam between the updater and whatever runs the app: systemd in production
 * (`createSystemd`, adapters/systemd.ts), a pidfile and a detached process without it
 * (`createProcessManager`, adapters/process-manager.ts).
 */
export interface ServiceState {
  /** The unit this state is of (systemd; several units report their worst). */
  unit?: string
  /** systemd's ActiveState; the process manager maps "running" to `active`, "gone" to `inactive` or `failed`. */
  active: 'active' | 'activating' | 'deactivating' | 'inactive' | 'failed' | 'reloading' | 'unknown'
  /** systemd's SubState (`running`, `auto-restart`, `dead`…), or the process manager's own word. */
  subState: string
  /** PID of the server process, undefined when none runs. */
  mainPid: number | undefined
  /** How often the service manager restarted the server by itself (systemd's NRestarts). */
  restarts: number
  /** Exit status of the last server process that ended, when known. */
  exitStatus: number | undefined
}

export interface ServiceManager {
  readonly kind: 'systemd' | 'process'
  /** What it manages, for messages: unit names, or the command's name. */
  readonly units: readonly string[]
  /** Stops the app if it runs and starts it again (several units: in order); resolves once the start was issued. */
  restart(): Promise<void>
  start(): Promise<void>
  stop(): Promise<void>
  state(): Promise<ServiceState>
  /** The app's last log lines since the last start, attached to a failed health step. */
  recentLogs(lines?: number): Promise<string[]>
}
