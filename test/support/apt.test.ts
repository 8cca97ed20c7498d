import { describe, expect, test } from 'vitest'
import { ensureCommand, type AptDeps } from './apt'

// ensureCommand's decisions and messages, with the machine replaced by a transcript: the real
// apt-get is what .ci/run and every test that needs a tool use.

const LOCKED = 'E: Could not get lock /var/lib/apt/lists/lock. It is held by process 812 (apt-get)'

/**
 * `statuses`: what each install returns, in turn (0 when they run out); `locked`: how many runs
 * of any apt-get fail first because another process holds a lock.
 */
function machine(opts: { root?: boolean; apt?: boolean; statuses?: number[]; installs?: string; locked?: number } = {}) {
  const transcript: string[] = []
  const statuses = [...(opts.statuses ?? [])]
  let locked = opts.locked ?? 0
  let installed = false
  let clock = 0
  const deps: AptDeps = {
    which: (cmd) => (cmd === 'apt-get' && opts.apt !== false ? '/usr/bin/apt-get' : cmd === opts.installs && installed ? `/usr/bin/${cmd}` : undefined),
    isRoot: () => opts.root !== false,
    run(argv) {
      transcript.push(argv.join(' '))
      if (locked > 0) {
        locked--
        return { status: 100, output: LOCKED }
      }
      const status = argv.includes('install') ? (statuses.shift() ?? 0) : 0
      if (argv.includes('install') && status === 0) installed = true
      return { status, output: status === 0 ? 'ok' : 'E: Unable to locate package upkeep-nothing' }
    },
    log: (line) => transcript.push(`log: ${line}`),
    now: () => clock,
    sleep(ms) {
      transcript.push(`sleep ${ms}`)
      clock += ms
    },
  }
  return { deps, transcript }
}

describe('ensureCommand', () => {
  test('installs with apt-get waiting for the dpkg lock', () => {
    const { deps, transcript } = machine({ installs: 'tool-a' })
    expect(ensureCommand('tool-a', ['pkg-a'], { purpose: 'a test' }, deps)).toBe('/usr/bin/tool-a')
    expect(transcript).toEqual(['log: a test: tool-a is missing; installing pkg-a with apt-get', 'apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends pkg-a'])
  })

  test('retries once after apt-get update, which waits for the lock too', () => {
    const { deps, transcript } = machine({ installs: 'tool-b', statuses: [100, 0] })
    expect(ensureCommand('tool-b', ['pkg-b=1.2-3'], { purpose: 'a test' }, deps)).toBe('/usr/bin/tool-b')
    expect(transcript.slice(1)).toEqual([
      'apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends pkg-b=1.2-3',
      'apt-get -o DPkg::Lock::Timeout=600 update -q',
      'apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends pkg-b=1.2-3',
    ])
  })

  test('fails loudly, naming the exact command that failed, its output and what to run', () => {
    const { deps } = machine({ installs: 'tool-c', statuses: [100, 100] })
    expect(() => ensureCommand('tool-c', ['upkeep-nothing'], { purpose: 'a test' }, deps)).toThrow(
      'tool-c is missing (needed by a test) and `apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends upkeep-nothing` failed:\n' +
        'E: Unable to locate package upkeep-nothing\n' +
        'Install it yourself (as root): apt-get update && apt-get install -y upkeep-nothing',
    )
  })

  test('an install that succeeds without the command is a failure too', () => {
    const { deps } = machine({ installs: 'something-else' })
    expect(() => ensureCommand('tool-d', ['pkg-d'], { purpose: 'a test' }, deps)).toThrow('`apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends pkg-d` did not install it')
  })

  test('another apt holding a lock is waited for, not a failure', () => {
    const { deps, transcript } = machine({ installs: 'tool-f', locked: 2 })
    expect(ensureCommand('tool-f', ['pkg-f'], { purpose: 'a test' }, deps)).toBe('/usr/bin/tool-f')
    const install = 'apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends pkg-f'
    expect(transcript.slice(1)).toEqual([install, `log: ${install}: another apt or dpkg holds a lock; waiting`, 'sleep 5000', install, `log: ${install}: another apt or dpkg holds a lock; waiting`, 'sleep 5000', install])
  })

  test('a lock held for more than 10 minutes fails loudly, naming the command', () => {
    const { deps, transcript } = machine({ installs: 'tool-g', locked: 1000 })
    expect(() => ensureCommand('tool-g', ['pkg-g'], { purpose: 'a test' }, deps)).toThrow(
      `tool-g is missing (needed by a test) and \`apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends pkg-g\` failed:\n${LOCKED}\n`,
    )
    // 121 tries 5 s apart = 10 minutes, for each of install, update, install.
    expect(transcript.filter((l) => l.startsWith('apt-get')).length).toBe(3 * 121)
  })

  test('not root, or no apt-get: the command to run, nothing run', () => {
    const notRoot = machine({ root: false })
    expect(() => ensureCommand('tool-e', ['pkg-e'], { purpose: 'a test' }, notRoot.deps)).toThrow('tool-e is missing (needed by a test); install it as root: apt-get update && apt-get install -y pkg-e')
    const noApt = machine({ apt: false })
    expect(() => ensureCommand('tool-e', ['pkg-e'], { purpose: 'a test' }, noApt.deps)).toThrow('there is no apt-get here: install pkg-e with your package manager')
    expect([...notRoot.transcript, ...noApt.transcript]).toEqual([])
  })

  test('a command that is there is returned without running anything', () => {
    const { deps, transcript } = machine()
    expect(ensureCommand('apt-get', ['apt'], { purpose: 'a test' }, deps)).toBe('/usr/bin/apt-get')
    expect(transcript).toEqual([])
  })
})
