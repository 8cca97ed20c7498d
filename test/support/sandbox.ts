import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, type Dirent, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { ensureCommand } from './apt'
import { repoRoot } from './paths'

// A real systemd for tests: systemd-nspawn boots the host's own systemd as PID 1 of a container
// whose root is an overlay of the host's / (upper layer on a tmpfs, or on disk to survive a
// crash). The container shares the host's network, so a port bound inside answers on the host's
// 127.0.0.1. Needs root. Each instance has its own name, state directory and cgroups; teardown
// kills everything in those cgroups, and instances left behind by a test process that died are
// powered off by their watchdog and swept away by the next startSandbox().

const STATE_ROOT = '/run/upkeep-sandbox'
const BOOT_SCRIPT = path.join(import.meta.dirname, 'sandbox-boot.sh')
/** What commands inside see: a clean environment, not the test runner's (npm_config_*, NODE_OPTIONS…). */
export const SANDBOX_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
const CGROUP_ROOTS = ['/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified', '/sys/fs/cgroup']
// Directories systemd inside would manage or clean (tmpfiles, its own mounts): never bind them.
const UNBINDABLE = new Set(['/', '/tmp', '/var', '/var/tmp', '/run', '/etc', '/usr', '/dev', '/proc', '/sys', '/boot', '/home', '/root'])

export interface SandboxOptions {
  /** Host directories bind-mounted read-write at the same path inside (fixed at boot). */
  binds?: string[]
  /**
   * A host directory keeping the overlay's upper layer (everything written inside: /etc, /opt…)
   * across `crash()`/`down()` and the next `up()`, like a disk across a power cut. Default: a tmpfs.
   */
  persistDir?: string
  /** Unit systemd boots into. Default multi-user.target, as on a server. */
  target?: string
  /** Part of the machine name, to tell instances apart in `ps` and logs. */
  label?: string
  bootTimeoutMs?: number
}

export interface ExecResult {
  code: number | null
  stdout: string
  stderr: string
}

export interface ExecOptions {
  input?: string
  /** Working directory inside; default /. */
  cwd?: string
  /** Added to the clean environment (PATH, HOME=/root, LANG). */
  env?: Record<string, string>
  timeoutMs?: number
}

export interface Sandbox {
  readonly name: string
  /** Runs a command inside (systemctl, journalctl talk to the sandbox's systemd); never throws on a non-zero exit. */
  exec(cmd: string, args?: string[], opts?: ExecOptions): Promise<ExecResult>
  /** Like exec, but throws with the output when the command fails; returns stdout. */
  execOk(cmd: string, args?: string[], opts?: ExecOptions): Promise<string>
  /** `sh -c script` inside; throws on failure, returns stdout. */
  sh(script: string, opts?: ExecOptions): Promise<string>
  writeFile(file: string, content: string, mode?: string): Promise<void>
  /** Boots again after crash() or down() (the same persistDir, when given). */
  up(): Promise<void>
  /** A power cut: SIGKILL the container's init and everything in it, no orderly shutdown. */
  crash(): Promise<void>
  /** Orderly poweroff, then removes everything the instance made (not persistDir). Idempotent. */
  down(): Promise<void>
  isUp(): boolean
}

interface Proc {
  pid: number
  start: string
}

let counter = 0
const live = new Set<Instance>()
let exitHookInstalled = false

/** Boots a sandbox and waits until its systemd is up (running or degraded). */
export async function startSandbox(opts: SandboxOptions = {}): Promise<Sandbox> {
  ensureSystemdNspawn()
  sweepStale()
  for (const b of opts.binds ?? []) verifyBindable(b)
  const label = (opts.label ?? 'test').replace(/[^a-z0-9-]/gi, '-').slice(0, 20)
  const name = `upkeep-${label}-${process.pid}-${++counter}-${randomBytes(2).toString('hex')}`
  const instance = new Instance(name, opts)
  if (!exitHookInstalled) {
    exitHookInstalled = true
    // A failing test or an exception still reaches 'exit': tear down what is still up.
    process.on('exit', () => {
      for (const i of live) i.teardown()
    })
  }
  await instance.up()
  return instance
}

class Instance implements Sandbox {
  private readonly state: string
  private readonly cgroups: string[]
  private nspawn: Proc | undefined
  private leader: Proc | undefined
  /** Resolves when the boot script (our child) has exited and been reaped. */
  private launcherExit: Promise<void> = Promise.resolve()

  constructor(
    readonly name: string,
    private readonly opts: SandboxOptions,
  ) {
    this.state = path.join(STATE_ROOT, name)
    this.cgroups = cgroupRoots().map((r) => path.join(r, `upkeep-sandbox-${name}`))
  }

  isUp(): boolean {
    return this.leader !== undefined && isAlive(this.leader)
  }

  async up(): Promise<void> {
    if (this.isUp()) return
    this.teardown()
    live.add(this)
    mkdirSync(path.join(this.state, 'ovl'), { recursive: true })
    mkdirSync(path.join(this.state, 'root'), { recursive: true })
    writeFileSync(path.join(this.state, 'owner'), `${process.pid} ${startTime(process.pid)}\n`)
    writeSeed(path.join(this.state, 'seed'))
    for (const cg of this.cgroups) mkdirSync(cg, { recursive: true })
    let persist = ''
    if (this.opts.persistDir) {
      mkdirSync(this.opts.persistDir, { recursive: true })
      persist = path.resolve(this.opts.persistDir)
    }

    const log = openSync(path.join(this.state, 'boot.log'), 'a')
    // The checkout, read-only: the overlay shows only /'s own filesystem, and a clone may live on
    // another one (a tmpfs /tmp, a separate /home), where install.sh and the tests' scripts are.
    const binds = [`--bind-ro=${repoRoot}`, ...(this.opts.binds ?? []).map((b) => `--bind=${path.resolve(b)}`)]
    const launcher = spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', BOOT_SCRIPT, ...binds], {
      env: {
        PATH: SANDBOX_PATH,
        STATE: this.state,
        NAME: this.name,
        TARGET: this.opts.target ?? 'multi-user.target',
        PERSIST: persist,
        CGROUPS: this.cgroups.join(' '),
        OWNER: `${process.pid} ${startTime(process.pid)}`,
      },
      stdio: ['ignore', log, log],
      // Its own session: a Ctrl-C meant for the test runner does not reach the container.
      detached: true,
    })
    closeSync(log)
    launcher.unref()
    let launcherGone = false
    this.launcherExit = new Promise<void>((resolve) => launcher.once('exit', () => resolve())).then(() => {
      launcherGone = true
    })

    const deadline = Date.now() + (this.opts.bootTimeoutMs ?? 60_000)
    const fail = (why: string): never => {
      const bootLog = readText(path.join(this.state, 'boot.log')).trim().split('\n').slice(-30).join('\n')
      this.teardown()
      throw new Error(`systemd sandbox ${this.name}: ${why}${bootLog ? `\n--- boot log:\n${bootLog}` : ''}`)
    }
    // First the container's init (nspawn's child in a PID namespace of its own), then a finished boot.
    while (!this.leader) {
      if (launcherGone) fail('systemd-nspawn exited during boot')
      if (Date.now() > deadline) fail('timed out waiting for the container to start')
      this.nspawn ??= readProc(path.join(this.state, 'nspawn.pid'))
      if (this.nspawn) this.leader = findContainerInit(this.nspawn.pid)
      await sleep(20)
    }
    for (;;) {
      const r = await this.exec('systemctl', ['is-system-running'], { timeoutMs: 5000 })
      const s = r.stdout.trim()
      if (s === 'running' || s === 'degraded') break
      if (s === 'stopping' || s === 'maintenance') fail(`the container's systemd is ${s}`)
      if (launcherGone || !isAlive(this.leader)) fail('systemd-nspawn exited during boot')
      if (Date.now() > deadline) {
        const jobs = await this.exec('systemctl', ['list-jobs', '--no-pager'])
        fail(`timed out waiting for boot (state: ${s || r.stderr.trim()})\n${jobs.stdout}`)
      }
      await sleep(50)
    }
  }

  async exec(cmd: string, args: string[] = [], opts: ExecOptions = {}): Promise<ExecResult> {
    const leader = this.leader
    if (!leader || !isAlive(leader)) throw new Error(`systemd sandbox ${this.name} is not up`)
    // Enter every namespace and the root of the container's PID 1, then cd inside.
    const argv = ['-t', String(leader.pid), '-a', '-r', '-w', '--', '/bin/sh', '-c', 'cd -- "$1" || exit 125; shift; exec "$@"', 'sandbox-exec', opts.cwd ?? '/', cmd, ...args]
    return new Promise((resolve, reject) => {
      const child = spawn('nsenter', argv, {
        env: { PATH: SANDBOX_PATH, HOME: '/root', LANG: 'C.UTF-8', ...opts.env },
        stdio: ['pipe', 'pipe', 'pipe'],
      })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d) => (stdout += d))
      child.stderr.on('data', (d) => (stderr += d))
      const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined
      child.on('error', reject)
      child.on('close', (code) => {
        clearTimeout(timer)
        resolve({ code, stdout, stderr })
      })
      child.stdin.on('error', () => {})
      child.stdin.end(opts.input ?? '')
    })
  }

  async execOk(cmd: string, args: string[] = [], opts: ExecOptions = {}): Promise<string> {
    const r = await this.exec(cmd, args, opts)
    if (r.code !== 0) throw new Error(`in sandbox: ${[cmd, ...args].join(' ')} exited ${r.code}\n${r.stdout}${r.stderr}`)
    return r.stdout
  }

  sh(script: string, opts: ExecOptions = {}): Promise<string> {
    return this.execOk('/bin/sh', ['-c', script], opts)
  }

  async writeFile(file: string, content: string, mode = '644'): Promise<void> {
    await this.execOk('/bin/sh', ['-c', 'mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1"', 'write', file, mode], { input: content })
  }

  async crash(): Promise<void> {
    // SIGKILL of the container's PID 1 makes the kernel kill its whole PID namespace at once.
    if (this.leader && isAlive(this.leader)) process.kill(this.leader.pid, 'SIGKILL')
    await this.waitForNspawnExit(5000)
    await this.reapLauncher()
    this.teardown()
  }

  async down(): Promise<void> {
    // nspawn turns SIGTERM into an orderly poweroff of the container.
    if (this.nspawn && isAlive(this.nspawn)) {
      process.kill(this.nspawn.pid, 'SIGTERM')
      await this.waitForNspawnExit(15_000)
    }
    await this.reapLauncher()
    this.teardown()
  }

  /** The boot script ends by itself once nspawn is gone; waiting for it lets us reap it. */
  private async reapLauncher(): Promise<void> {
    await Promise.race([this.launcherExit, sleep(3000)])
  }

  private async waitForNspawnExit(ms: number): Promise<void> {
    const deadline = Date.now() + ms
    while (this.nspawn && isAlive(this.nspawn) && Date.now() < deadline) await sleep(20)
  }

  /** Synchronous, so it also runs from process.on('exit'): kill everything, remove cgroups and state. */
  teardown(): void {
    for (const p of [this.leader, this.nspawn]) if (p && isAlive(p)) process.kill(p.pid, 'SIGKILL')
    killCgroups(this.cgroups)
    removeState(this.state)
    this.leader = undefined
    this.nspawn = undefined
    live.delete(this)
  }
}

/** Each mounted cgroup hierarchy systemd tracks processes in (hybrid: name=systemd + unified; v2: one). */
function cgroupRoots(): string[] {
  return CGROUP_ROOTS.filter((r) => existsSync(path.join(r, 'cgroup.procs')))
}

function killCgroups(cgroups: string[]): void {
  for (const cg of cgroups) {
    if (!existsSync(cg)) continue
    for (let i = 0; i < 50; i++) {
      const pids = cgroupDirs(cg).flatMap((d) => readText(path.join(d, 'cgroup.procs')).split('\n').filter(Boolean))
      if (pids.length === 0) break
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL')
        } catch {
          /* already gone */
        }
      }
      sleepSync(100)
    }
    // Children first: a cgroup directory can only be removed once it has none.
    for (const d of cgroupDirs(cg).reverse()) {
      try {
        rmdirSync(d)
      } catch {
        /* still busy: reported below */
      }
    }
    if (existsSync(cg)) process.emitWarning(`systemd sandbox: could not remove cgroup ${cg}`)
  }
}

/** `dir` and every cgroup below it, parents before children. */
function cgroupDirs(dir: string): string[] {
  const out = [dir]
  let entries: Dirent[] = []
  try {
    entries = readdirSync(dir, { withFileTypes: true })
  } catch {
    return out
  }
  for (const e of entries) if (e.isDirectory()) out.push(...cgroupDirs(path.join(dir, e.name)))
  return out
}

function removeState(state: string): void {
  if (!existsSync(state)) return
  // The overlay and tmpfs live in the boot script's private mount namespace; should one ever be
  // visible here, unmount it first so rm never walks into the persisted layer.
  const mounted = readText('/proc/self/mounts')
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .filter((m) => m.startsWith(state + '/'))
  for (const m of mounted.reverse()) spawnSync('umount', ['-l', m])
  rmSync(state, { recursive: true, force: true })
}

/** Tears down instances whose test process is gone (killed, crashed) before their cleanup ran. */
function sweepStale(): void {
  let names: string[] = []
  try {
    names = readdirSync(STATE_ROOT)
  } catch {
    return
  }
  for (const name of names) {
    const owner = readProc(path.join(STATE_ROOT, name, 'owner'))
    if (owner && isAlive(owner)) continue
    const nspawn = readProc(path.join(STATE_ROOT, name, 'nspawn.pid'))
    if (nspawn && isAlive(nspawn)) process.kill(nspawn.pid, 'SIGKILL')
    killCgroups(cgroupRoots().map((r) => path.join(r, `upkeep-sandbox-${name}`)))
    removeState(path.join(STATE_ROOT, name))
  }
}

/**
 * Files a fresh upper layer starts with: a machine id of its own; masks for every unit the
 * host's admin enabled (timers, sockets, daemons: not ours to start, and they would share the
 * host's network); and no cleaning of /tmp, where the test's bound work directories live.
 */
function writeSeed(seed: string): void {
  rmSync(seed, { recursive: true, force: true })
  const units = path.join(seed, 'etc/systemd/system')
  mkdirSync(units, { recursive: true, mode: 0o755 })
  mkdirSync(path.join(seed, 'etc/tmpfiles.d'), { recursive: true, mode: 0o755 })
  writeFileSync(path.join(seed, 'etc/machine-id'), randomBytes(16).toString('hex') + '\n', { mode: 0o444 })
  const masked = new Set(['systemd-tmpfiles-clean.timer'])
  const hostUnits = '/etc/systemd/system'
  for (const wants of safeReaddir(hostUnits).filter((d) => d.endsWith('.wants') || d.endsWith('.requires'))) {
    for (const unit of safeReaddir(path.join(hostUnits, wants))) masked.add(unit)
  }
  for (const unit of masked) symlinkSync('/dev/null', path.join(units, unit))
  for (const conf of ['tmp.conf', 'x11.conf']) symlinkSync('/dev/null', path.join(seed, 'etc/tmpfiles.d', conf))
}

function verifyBindable(dir: string): void {
  const abs = path.resolve(dir)
  if (UNBINDABLE.has(abs)) throw new Error(`systemd sandbox: refusing to bind ${abs} (systemd inside manages or cleans it); bind a directory below it`)
  if (!existsSync(abs) || !statSync(abs).isDirectory()) throw new Error(`systemd sandbox: bind source ${abs} is not a directory`)
}

/**
 * systemd-nspawn comes with Debian's systemd-container: installed with apt when missing, pinned to
 * the installed systemd's version so apt does not upgrade the host's systemd; otherwise a loud
 * error naming the command to run. Never a skip.
 */
export function ensureSystemdNspawn(): void {
  const purpose = 'the systemd sandbox (systemd-nspawn over an overlay of /)'
  if (process.platform !== 'linux') throw new Error(`${purpose} needs Linux`)
  if (process.getuid?.() !== 0) throw new Error(`${purpose} needs root (it mounts an overlay and boots a container): run the tests as root, e.g. \`sudo npm test\``)
  ensureCommand('nsenter', ['util-linux'], { purpose })
  ensureCommand('unshare', ['util-linux'], { purpose })
  const version = spawnSync('dpkg-query', ['-W', '-f=${Version}', 'systemd'], { encoding: 'utf8' }).stdout?.trim()
  const packages = version ? [`systemd-container=${version}`] : ['systemd', 'systemd-container']
  ensureCommand('systemd-nspawn', packages, { purpose, manual: 'apt-get update && apt-get install -y systemd-container' })
  if (!existsSync('/lib/systemd/systemd') && !existsSync('/usr/lib/systemd/systemd')) {
    throw new Error(`${purpose} boots the host's systemd, and /lib/systemd/systemd is missing: apt-get install -y systemd`)
  }
}

/** Field 22 of /proc/PID/stat (start time): tells a process from a later one with a recycled PID. */
function startTime(pid: number): string | undefined {
  const stat = readText(`/proc/${pid}/stat`)
  if (!stat) return undefined
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined // a zombie is dead
  return fields[19]
}

function isAlive(p: Proc): boolean {
  return startTime(p.pid) === p.start
}

/** "PID [STARTTIME]" from a file; the start time is read now when the file has none. */
function readProc(file: string): Proc | undefined {
  const [pid, start] = readText(file).trim().split(/\s+/)
  if (!pid || !/^\d+$/.test(pid)) return undefined
  const s = start ?? startTime(Number(pid))
  return s ? { pid: Number(pid), start: s } : undefined
}

/** nspawn's child that runs in another PID namespace: the container's systemd. */
function findContainerInit(nspawnPid: number): Proc | undefined {
  const ownNs = safeReadlink('/proc/self/ns/pid')
  const children = safeReaddir(`/proc/${nspawnPid}/task`).flatMap((t) => readText(`/proc/${nspawnPid}/task/${t}/children`).trim().split(/\s+/).filter(Boolean))
  for (const c of children) {
    const pid = Number(c)
    const ns = safeReadlink(`/proc/${pid}/ns/pid`)
    if (!ns || ns === ownNs || readText(`/proc/${pid}/comm`).trim() !== 'systemd') continue
    const start = startTime(pid)
    if (start) return { pid, start }
  }
  return undefined
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return ''
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir)
  } catch {
    return []
  }
}

function safeReadlink(p: string): string | undefined {
  try {
    return readlinkSync(p)
  } catch {
    return undefined
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}
