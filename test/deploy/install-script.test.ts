import { copyFile, chmod, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { ensureCommand } from '../support/apt'
import { repoRoot } from '../support/paths'
import { run } from '../support/run'

// install.sh's own behaviour that needs no systemd: options, refusals, messages. Installing for
// real is install.test.ts, in the systemd sandbox.

const script = path.join(repoRoot, 'install.sh')
const sh = (args: string[], env: Record<string, string> = {}) => run('sh', [script, ...args], { env: { PATH: process.env.PATH ?? '', ...env } })

describe('install.sh', () => {
  test('passes shellcheck as POSIX sh', async () => {
    const shellcheck = ensureCommand('shellcheck', ['shellcheck'], { purpose: 'the install.sh lint test' })
    const r = await run(shellcheck, ['--shell=sh', script])
    expect(r.stdout + r.stderr).toBe('')
    expect(r.code).toBe(0)
  })

  test('keeps everything inside main, called on the last line (a truncated download runs nothing)', async () => {
    const text = await readFile(script, 'utf8')
    const lines = text.trimEnd().split('\n')
    expect(lines.at(-1)).toBe('main "$@"')
    expect(text).toMatch(/^set -eu$/m)
    // Top level holds only assignments, comments and function definitions.
    const code = text.replace(/^USAGE='[^']*'$/m, "USAGE=''").split('\n')
    const topLevel = code.filter((l) => /^[a-z]/.test(l) && !/^[a-z_]+\(\) \{/.test(l))
    expect(topLevel).toEqual(['set -eu', 'main "$@"'])
    // Never a bare `exit`: each one gives a status.
    expect(text.match(/\bexit\s*(;|$)/gm)).toBeNull()
  })

  test('--help lists the options and exits 0', async () => {
    const r = await sh(['--help'])
    expect(r.code).toBe(0)
    for (const opt of ['--repo URL', '--ref vX.Y.Z', '--dir DIR', '--port PORT', '--update-repo OWNER/NAME', '--release-key FILE', '--dry-run', '--uninstall', '--purge', 'UPKEEP_ADMIN_PASSWORD']) {
      expect(r.stdout).toContain(opt)
    }
  })

  test.each([
    [['--bogus'], /unknown option: --bogus[\s\S]*--help/],
    [['--ref', '1.2'], /--ref '1\.2' is not a release tag[\s\S]*v1\.4\.0/],
    [['--ref', 'v1.2.3; rm -rf /'], /is not a release tag/],
    [['--port', '70000'], /--port 70000 is out of range/],
    [['--port', 'http'], /--port 'http' is not a port number/],
    [['--host', 'example.com'], /--host 'example\.com' is not an IP address/],
    [['--update-repo', 'not a repo'], /is not a GitHub repository name[\s\S]*OWNER\/NAME/],
    [['--update-repo', 'acme/..'], /is not a GitHub repository name/],
    [['--dir', 'relative/dir'], /--dir 'relative\/dir' is not a plain absolute path/],
    [['--dir', '/opt/up kept'], /is not a plain absolute path/],
    [['--purge'], /--purge only goes with --uninstall/],
    [['--repo'], /--repo needs a value/],
    [['--release-key', '/nonexistent/upkeep-release.pub'], /--release-key \/nonexistent\/upkeep-release\.pub cannot be read/],
    [['--release-key', '/etc/hostname'], /is not an OpenSSH public key[\s\S]*never the private key/],
  ])('refuses %j with a message that says what to do', async (args, message) => {
    const r = await sh(args)
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^install\.sh: error: /)
    expect(r.stderr).toMatch(message)
    expect(r.stdout).not.toMatch(/Step 2\//)
  })

  test('refuses to run where systemd is not the service manager, saying so', async () => {
    // Hide /run/systemd in a mount namespace of its own, whatever the host runs.
    const hide = 'if [ -d /run/systemd ]; then mount -t tmpfs none /run/systemd; fi; exec sh "$0" --dir /opt/upkeep-never "$@"'
    const r = await run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', hide, script], { env: { PATH: process.env.PATH ?? '' } })
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/Step 1\/8: Checking this system/)
    expect(r.stderr).toMatch(/systemd is not this system's service manager/)
    expect(r.stderr).toMatch(/npm start|node build\/server\.mjs/)
  })

  describe('as a user other than root', () => {
    let dir: string
    beforeAll(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'upkeep-install-nobody-'))
      await chmod(dir, 0o755)
      await copyFile(script, path.join(dir, 'install.sh'))
    })
    afterAll(() => rm(dir, { recursive: true, force: true }))

    test('refuses, naming the command to run', async () => {
      const r = await run('runuser', ['-u', 'nobody', '--', 'sh', path.join(dir, 'install.sh'), '--port', '9000'], { cwd: dir, env: { PATH: process.env.PATH ?? '' } })
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(/must run as root/)
      expect(r.stderr).toMatch(/sudo sh .*install\.sh --port 9000/)
    })
  })
})
