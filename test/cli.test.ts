import { spawn, spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { repoRoot } from './support/paths'
import { run } from './support/run'

const upkeep = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  run(process.execPath, [path.join(repoRoot, 'updater/bin.mjs'), ...args], { cwd: repoRoot, env: { ...process.env, ...env } })

describe('upkeep CLI', () => {
  test('--help prints usage and exits 0', async () => {
    const r = await upkeep(['--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^Usage: upkeep <command> \[options\]/)
    for (const command of ['serve', 'status [--json]', 'check [--json]', 'set-password [--password-stdin]']) expect(r.stdout).toContain(`upkeep ${command}`)
  })

  test('--version prints the running version', async () => {
    const r = await upkeep(['--version'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^upkeep 0\.0\.0-dev/)
  })

  test('an unknown command prints usage and exits 2', async () => {
    const r = await upkeep(['nonsense'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('unknown command "nonsense"')
    expect(r.stderr).toContain('Usage: upkeep')
  })

  test('no command prints usage and exits 2', async () => {
    const r = await upkeep([])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('Usage: upkeep')
  })

  test('--help lists the updater commands, apply-request marked internal', async () => {
    const r = await upkeep(['--help'])
    for (const c of ['update [vX.Y.Z]', 'rollback', 'history', 'recover [--boot]']) expect(r.stdout).toContain(`upkeep ${c}`)
    expect(r.stdout).toMatch(/upkeep apply-request\s+internal: /)
    const update = await upkeep(['update', '--help'])
    expect(update.stdout).toContain('--no-backup')
    expect(update.stdout).toContain('Exit status: 0 updated, 1 failed (nothing changed), 3 rolled back, 2 usage.')
  })

  test('a command’s --help', async () => {
    const r = await upkeep(['serve', '--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('Usage: upkeep serve')
  })
})

describe('server commands run as processes', () => {
  let dataDir: string
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'upkeep-cli-proc-'))
  })
  afterAll(() => rm(dataDir, { recursive: true, force: true }))
  // GITHUB_API_URL points at a closed port: these tests must never reach a network.
  const env = () => ({ DATA_DIR: dataDir, UPDATE_REPO: 'acme/widget', GITHUB_API_URL: 'http://127.0.0.1:9', LOG_LEVEL: 'warn' })

  test.each(['status', 'check', 'set-password'])('upkeep %s --help', async (name) => {
    const r = await upkeep([name, '--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(new RegExp(`^Usage: upkeep ${name} \\[--`))
    expect(r.stdout).toContain('Options:')
  })

  test('upkeep check --json with checks disabled: JSON, no request', async () => {
    const r = await upkeep(['check', '--json'], { ...env(), UPDATE_CHECK_DISABLED: 'true' })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ checksDisabled: true, source: { repo: 'acme/widget', from: 'env' }, error: null, latest: null })
  })

  test('upkeep status reads the release cache the server wrote', async () => {
    const { writeFile } = await import('node:fs/promises')
    const latest = { version: '1.5.0', tag: 'v1.5.0', name: 'Widget 1.5.0', notesMarkdown: '', url: 'https://github.com/acme/widget/releases/tag/v1.5.0', publishedAt: '2026-11-20T09:30:00Z', prerelease: false }
    await writeFile(
      path.join(dataDir, 'release-cache.json'),
      JSON.stringify({ repo: 'acme/widget', channel: 'stable', checkedAt: new Date().toISOString(), latest, releases: [latest], via: 'api' }),
    )
    const r = await upkeep(['status'], env())
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('Update:        available: 0.0.0-dev → 1.5.0')
  })

  test('upkeep pause / resume switch automatic updates off and on; upkeep status says so', async () => {
    const paused = await upkeep(['pause'], env())
    expect(paused.stderr).toBe('')
    expect(paused.stdout).toBe('Automatic updates of every app are paused; `upkeep resume` resumes them.\n')
    expect((await upkeep(['status'], env())).stdout).toContain('Automatic:     paused for all apps\n')
    const resumed = await upkeep(['--app', 'upkeep', 'resume'], env())
    expect(resumed.stdout).toContain('They stay paused for now: automatic updates of all apps are paused (`upkeep resume`).')
    expect((await upkeep(['resume'], env())).code).toBe(0)
    expect((await upkeep(['status'], env())).stdout).toContain('Automatic:     notify only: 1.5.0 is available\n')
    expect((await upkeep(['pause', 'now'], env())).code).toBe(2)
  })

  test('upkeep pause run as root writes the settings as the data dir\'s owner (the server must still read them), 0600', async () => {
    const { chown, mkdir, stat } = await import('node:fs/promises')
    const owned = path.join(dataDir, 'owned-by-nobody')
    await mkdir(owned)
    await chown(owned, 65534, 65534)
    const r = await upkeep(['pause'], { ...env(), DATA_DIR: owned })
    expect(r.code, r.stderr).toBe(0)
    const s = await stat(path.join(owned, 'settings.json'))
    expect([s.uid, s.gid, s.mode & 0o777]).toEqual([65534, 65534, 0o600])
  })

  test('upkeep status with a hostile UPDATE_REPO exits 2 naming it', async () => {
    const r = await upkeep(['status'], { ...env(), UPDATE_REPO: 'x;rm -rf /' })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^upkeep: invalid UPDATE_REPO: must be a GitHub repository owner\/name, got "x;rm -rf \/"/)
    expect(r.stdout).toBe('')
  })

  test('upkeep set-password on a terminal: asks twice and never echoes the password', async () => {
    // `script` gives the command a pseudo-terminal, as an operator's ssh session would.
    if (spawnSync('script', ['--version']).error) throw new Error('this test needs script(1): apt-get install -y bsdutils')
    const child = spawn('script', ['-qefc', `${JSON.stringify(process.execPath)} updater/bin.mjs set-password`, '/dev/null'], {
      cwd: repoRoot,
      env: { ...process.env, ...env() },
    })
    let out = ''
    const sent = new Set<string>()
    child.stdout.on('data', (d) => {
      out += d
      // Type only once the prompt is up: a terminal echoes what arrives before raw mode is on.
      for (const prompt of ['New admin password: ', 'Repeat it: ']) {
        if (out.includes(prompt) && !sent.has(prompt)) {
          sent.add(prompt)
          child.stdin.write('typed-on-a-tty\r')
        }
      }
    })
    child.stderr.on('data', (d) => (out += d))
    const code = await new Promise((resolve) => child.on('close', resolve))
    expect(out).toContain('New admin password: ')
    expect(out).toContain('Admin password changed.')
    expect(out).not.toContain('typed-on-a-tty')
    expect(code).toBe(0)
    expect(await readFile(path.join(dataDir, 'admin-password.json'), 'utf8')).toMatch(/"hash": "scrypt\$/)
  })
})

describe('bad configuration', () => {
  test('PORT=abc npm start exits 2 naming PORT', async () => {
    const r = await run('npm', ['start', '--silent'], { cwd: repoRoot, env: { ...process.env, PORT: 'abc' }, timeoutMs: 60_000 })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('invalid PORT: must be a port number from 0 to 65535, got "abc"')
  })

  test('upkeep serve with a hostile UPDATE_REPO exits 2 naming it', async () => {
    const r = await upkeep(['serve'], { UPDATE_REPO: '--upload-pack=evil/x', PORT: '0' })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('invalid UPDATE_REPO: must be a GitHub repository owner/name, got "--upload-pack=evil/x"')
  })

  test('upkeep serve reports every bad variable', async () => {
    const r = await upkeep(['serve'], { PORT: '99999', LOG_LEVEL: 'loud' })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('invalid PORT')
    expect(r.stderr).toContain('invalid LOG_LEVEL')
  })
})
