import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'

const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** apt-get that waits (up to 10 minutes) for another apt or dpkg holding the dpkg lock instead of failing. */
export const APT_GET = ['apt-get', '-o', 'DPkg::Lock::Timeout=600'] as const
// DPkg::Lock::Timeout does not cover the package lists' lock (apt-get update) nor the download
// cache's: a run failing on those is retried for as long (see .ci/apt.sh, which does the same).
const LOCK_WAIT_MS = 600_000
const LOCK_RETRY_MS = 5_000

/** Where `cmd` is on PATH (or the system PATH), if anywhere. */
export function which(cmd: string): string | undefined {
  for (const dir of `${process.env.PATH ?? ''}:${SYSTEM_PATH}`.split(':').filter(Boolean)) {
    const p = path.join(dir, cmd)
    if (existsSync(p)) return p
  }
  return undefined
}

/** What ensureCommand does to the machine; tests pass their own to see the commands it runs. */
export interface AptDeps {
  which(cmd: string): string | undefined
  isRoot(): boolean
  /** Runs argv with DEBIAN_FRONTEND=noninteractive and LC_ALL=C; returns the exit status and the output. */
  run(argv: readonly string[]): { status: number | null; output: string }
  log(line: string): void
  now(): number
  /** Blocks for `ms` (ensureCommand is synchronous). */
  sleep(ms: number): void
}

export const realAptDeps: AptDeps = {
  which,
  isRoot: () => process.getuid?.() === 0,
  run([cmd, ...args]) {
    const r = spawnSync(cmd!, args, { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' } })
    return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` }
  },
  log: (line) => process.stderr.write(`${line}\n`),
  now: () => Date.now(),
  sleep: (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms),
}

/** Runs apt-get, again every 5 s for up to 10 minutes while another process holds one of apt's locks. */
function runWaitingForLocks(argv: readonly string[], deps: AptDeps): { status: number | null; output: string } {
  const deadline = deps.now() + LOCK_WAIT_MS
  for (;;) {
    const r = deps.run(argv)
    if (r.status === 0 || !r.output.includes('Could not get lock') || deps.now() >= deadline) return r
    deps.log(`${argv.join(' ')}: another apt or dpkg holds a lock; waiting`)
    deps.sleep(LOCK_RETRY_MS)
  }
}

const checked = new Set<string>()

/**
 * Makes sure `cmd` exists, installing `packages` with apt-get when it does not (one
 * `apt-get update` and a retry if the first attempt fails). A test that needs a tool never skips:
 * when it cannot be installed (not root, no apt, no network), this throws naming the command to run.
 */
export function ensureCommand(cmd: string, packages: string[], opts: { purpose: string; manual?: string } = { purpose: 'the tests' }, deps: AptDeps = realAptDeps): string {
  const found = deps.which(cmd)
  if (found && checked.has(cmd)) return found
  if (found) {
    checked.add(cmd)
    return found
  }
  const manual = opts.manual ?? `apt-get update && apt-get install -y ${packages.map((p) => p.split('=')[0]).join(' ')}`
  if (!deps.isRoot()) throw new Error(`${cmd} is missing (needed by ${opts.purpose}); install it as root: ${manual}`)
  if (!deps.which('apt-get')) throw new Error(`${cmd} is missing (needed by ${opts.purpose}) and there is no apt-get here: install ${packages.join(' ')} with your package manager`)
  const install = [...APT_GET, 'install', '-y', '-q', '--no-install-recommends', ...packages]
  deps.log(`${opts.purpose}: ${cmd} is missing; installing ${packages.join(' ')} with apt-get`)
  let r = runWaitingForLocks(install, deps)
  if (r.status !== 0) {
    runWaitingForLocks([...APT_GET, 'update', '-q'], deps)
    r = runWaitingForLocks(install, deps)
  }
  const installed = deps.which(cmd)
  if (r.status !== 0 || !installed) {
    const tail = r.output.trim().split('\n').slice(-15).join('\n')
    const what = r.status !== 0 ? `\`${install.join(' ')}\` failed` : `\`${install.join(' ')}\` did not install it`
    throw new Error(`${cmd} is missing (needed by ${opts.purpose}) and ${what}:\n${tail}\nInstall it yourself (as root): ${manual}`)
  }
  checked.add(cmd)
  return installed
}
