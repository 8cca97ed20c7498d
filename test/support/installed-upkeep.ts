import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { RunCommand } from '../../updater/adapters/systemd'
import { repoRoot } from './paths'
import { createReleaseOrigin, serveGitHttp, STANDARD_RELEASES, type GitHttpServer, type ReleaseOrigin, type ReleaseSpec } from './release-fixtures'
import { freePort, waitForJson } from './run'
import { startSandbox, type ExecResult, type Sandbox } from './sandbox'

// Everything a test of an installed Upkeep needs: a work dir bound into a systemd sandbox, a bare
// origin of this repo with releases served over HTTP, and install.sh run against it.

export const INSTALL_DIR = '/opt/upkeep'
const INSTALL_SH = path.join(repoRoot, 'install.sh')

export interface UpkeepSandbox {
  /** Host directory bound into the sandbox (origin.git lives here). */
  work: string
  origin: ReleaseOrigin
  git: GitHttpServer
  sb: Sandbox
  /** The port upkeep.socket listens on (127.0.0.1, reachable from the host). */
  port: number
  /** install.sh with these arguments, as root inside the sandbox; never throws on failure. */
  install(args: string[], env?: Record<string, string>): Promise<ExecResult>
  /** install.sh from the origin at `ref` into INSTALL_DIR on `port`, plus `args`. */
  installRelease(ref: string, args?: string[], env?: Record<string, string>): Promise<ExecResult>
  health(timeoutMs?: number): Promise<{ status: string; version: string; commit: string; startedAt: string }>
  mainPid(unit?: string): Promise<number>
  /** A RunCommand for createSystemd() that runs systemctl/journalctl inside the sandbox. */
  run: RunCommand
  close(): Promise<void>
}

/**
 * Boots a sandbox ready for install.sh (nothing installed yet). `persistDir` (under `work` when
 * `persist` is true) keeps the sandbox's disk across `sb.crash()` + `sb.up()`.
 */
export async function startUpkeepSandbox(opts: { label?: string; releases?: readonly ReleaseSpec[]; persist?: boolean } = {}): Promise<UpkeepSandbox> {
  const work = await mkdtemp(path.join(tmpdir(), 'upkeep-installed-'))
  let git: GitHttpServer | undefined
  let sb: Sandbox | undefined
  try {
    // The service user reads nothing here, but git's http-backend and the sandbox's root do.
    await chmod(work, 0o755)
    const origin = await createReleaseOrigin(work, opts.releases ?? STANDARD_RELEASES)
    git = await serveGitHttp(work)
    sb = await startSandbox({ label: opts.label ?? 'upkeep', binds: [work], persistDir: opts.persist ? path.join(work, 'disk') : undefined })
    const port = await freePort()
    const box = sb
    const gitServer = git
    const install = (args: string[], env: Record<string, string> = {}) => box.exec('sh', [INSTALL_SH, ...args], { timeoutMs: 300_000, env })
    return {
      work,
      origin,
      git: gitServer,
      sb: box,
      port,
      install,
      installRelease: (ref, args = [], env = {}) => install(['--repo', gitServer.url('origin.git'), '--ref', ref, '--dir', INSTALL_DIR, '--port', String(port), ...args], env),
      health: (timeoutMs = 10_000) => waitForJson(`http://127.0.0.1:${port}/api/health`, timeoutMs),
      mainPid: async (unit = 'upkeep.service') => Number((await box.execOk('systemctl', ['show', '-p', 'MainPID', '--value', unit])).trim()),
      run: async (file, args, { timeoutMs }) => {
        const r = await box.exec(file, args, { timeoutMs })
        return { exitCode: r.code ?? 1, stdout: r.stdout, stderr: r.stderr }
      },
      async close() {
        await box.down()
        await gitServer.close()
        await rm(work, { recursive: true, force: true })
      },
    }
  } catch (err) {
    await sb?.down()
    await git?.close()
    await rm(work, { recursive: true, force: true })
    throw err
  }
}
