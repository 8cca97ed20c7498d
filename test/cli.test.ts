import path from 'node:path'
import { describe, expect, test } from 'vitest'
import { repoRoot } from './support/paths'
import { run } from './support/run'

const upkeep = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  run(process.execPath, [path.join(repoRoot, 'updater/bin.mjs'), ...args], { cwd: repoRoot, env: { ...process.env, ...env } })

describe('upkeep CLI', () => {
  test('--help prints usage and exits 0', async () => {
    const r = await upkeep(['--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^Usage: upkeep <command> \[options\]/)
    expect(r.stdout).toContain('serve')
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
    expect(update.stdout).toContain('Exit status: 0 updated, 1 failed (nothing changed), 3 rolled back.')
  })

  test('a command’s --help', async () => {
    const r = await upkeep(['serve', '--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('Usage: upkeep serve')
  })
})

describe('bad configuration', () => {
  test('PORT=abc npm start exits 2 naming PORT', async () => {
    const r = await run('npm', ['start', '--silent'], { cwd: repoRoot, env: { ...process.env, PORT: 'abc' }, timeoutMs: 60_000 })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('invalid PORT: must be a port number from 0 to 65535, got "abc"')
  })

  test('upkeep serve reports every bad variable', async () => {
    const r = await upkeep(['serve'], { PORT: '99999', LOG_LEVEL: 'loud' })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('invalid PORT')
    expect(r.stderr).toContain('invalid LOG_LEVEL')
  })
})
