import { cp, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { readReleaseManifest } from '../updater/adapters/release-manifest'
import { adminEnv, login } from './support/auth'
import { commitAll, copyProject, git, initRepo } from './support/git-fixtures'
import { freePort, run, waitForJson } from './support/run'

// Builds the project from a tagged repository of its own sources, then runs the build
// from a directory with no node_modules anywhere above it.
describe('npm run build', () => {
  let work: string
  let repo: string
  let commit: string
  let out: string

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'upkeep-build-'))
    repo = path.join(work, 'repo')
    await copyProject(repo, { linkNodeModules: true })
    initRepo(repo)
    commitAll(repo, 'release 1.4.0')
    git(repo, ['tag', '-a', 'v1.4.0', '-m', 'v1.4.0'])
    await writeFile(path.join(repo, 'CHANGES.txt'), 'after the tag\n')
    commit = commitAll(repo, 'one commit after v1.4.0')
    const r = await run('npm', ['run', 'build', '--silent', '--', '--out', path.join(work, 'build')], { cwd: repo, timeoutMs: 120_000 })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    out = path.join(work, 'elsewhere', 'build')
    await cp(path.join(work, 'build'), out, { recursive: true })
  })
  afterAll(() => rm(work, { recursive: true, force: true }))

  test('embeds the git describe version and the commit', async () => {
    const info = JSON.parse(await readFile(path.join(out, 'build-info.json'), 'utf8'))
    expect(info).toMatchObject({ version: `1.4.0-1-g${commit.slice(0, 7)}`, commit })
  })

  test('writes the release manifest the updater reads to start, health-check and roll back to the build', async () => {
    const manifest = await readReleaseManifest(out)
    const info = JSON.parse(await readFile(path.join(out, 'build-info.json'), 'utf8'))
    expect(manifest).toEqual({ tag: `v1.4.0-1-g${commit.slice(0, 7)}`, version: `1.4.0-1-g${commit.slice(0, 7)}`, commit, serverEntry: 'server.mjs', healthPath: '/api/health', builtAt: info.builtAt })
    await stat(path.join(out, manifest!.serverEntry))
  })

  test('node server.mjs runs without node_modules and answers /api/health', async () => {
    const port = await freePort()
    const dataDir = path.join(work, 'data')
    const server = (await import('node:child_process')).spawn(process.execPath, [path.join(out, 'server.mjs')], {
      cwd: path.join(work, 'elsewhere'),
      env: { PATH: process.env.PATH, PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: 'warn', UPDATE_REPO: 'acme/widget', UPDATE_CHECK_DISABLED: 'true', ...adminEnv() },
      stdio: 'ignore',
    })
    try {
      const health = await waitForJson<Record<string, string>>(`http://127.0.0.1:${port}/api/health`)
      expect(health).toMatchObject({ status: 'ok', version: `1.4.0-1-g${commit.slice(0, 7)}`, commit })
      const index = await fetch(`http://127.0.0.1:${port}/`)
      expect(index.status).toBe(200)
      expect(await index.text()).toContain('<title>Upkeep</title>')
      const base = `http://127.0.0.1:${port}`
      expect((await fetch(`${base}/api/updates`)).status).toBe(401)
      const updates = await fetch(`${base}/api/updates`, { headers: { cookie: await login(base) } })
      expect(updates.status).toBe(200)
      expect(await updates.json()).toMatchObject({ current: { version: `1.4.0-1-g${commit.slice(0, 7)}` }, checksDisabled: true, source: { repo: 'acme/widget' } })
    } finally {
      server.kill('SIGTERM')
    }
    const code = await new Promise((r) => server.once('exit', r))
    expect(code).toBe(0)
  })

  test('node upkeep.mjs --version names the build', async () => {
    const r = await run(process.execPath, [path.join(out, 'upkeep.mjs'), '--version'], { cwd: work, env: { PATH: process.env.PATH } })
    expect(r.stdout.trim()).toBe(`upkeep 1.4.0-1-g${commit.slice(0, 7)} (${commit.slice(0, 12)})`)
  })

  test('node upkeep.mjs runs the server commands from server-cli.mjs: status, check, set-password', async () => {
    const upkeep = (args: string[], env: Record<string, string> = {}, input?: string) =>
      run(process.execPath, [path.join(out, 'upkeep.mjs'), ...args], { cwd: work, env: { PATH: process.env.PATH, ...env }, input })
    const help = await upkeep(['status', '--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/^Usage: upkeep status \[--json\]/)

    const env = { DATA_DIR: path.join(work, 'cli-data'), UPDATE_REPO: 'acme/widget', UPDATE_CHECK_DISABLED: 'true' }
    const status = await upkeep(['check', '--json'], env)
    expect(status.stderr).toBe('')
    expect(status.code).toBe(0)
    expect(JSON.parse(status.stdout)).toMatchObject({ current: { version: `1.4.0-1-g${commit.slice(0, 7)}`, commit }, checksDisabled: true })

    const pw = await upkeep(['set-password', '--password-stdin'], env, 'from the build\n')
    expect(pw.stderr).toBe('')
    expect(pw.code).toBe(0)
    expect((await stat(path.join(env.DATA_DIR, 'admin-password.json'))).mode & 0o777).toBe(0o600)

    // The updater bundle holds no server code: it loads server-cli.mjs beside it at run time.
    const bundle = await readFile(path.join(out, 'upkeep.mjs'), 'utf8')
    expect(bundle).toContain('server-cli.mjs')
    expect(bundle).not.toContain('createServerServices')
  })

  test('npm run pack makes a tarball that sha256sum -c accepts', async () => {
    const dist = path.join(work, 'dist')
    const r = await run(path.join(repo, 'node_modules/.bin/tsx'), ['deploy/pack.ts', '--build', out, '--out', dist], { cwd: repo })
    expect(r.code).toBe(0)
    const name = `upkeep-1.4.0-1-g${commit.slice(0, 7)}.tar.gz`
    expect(await readFile(path.join(dist, 'SHA256SUMS'), 'utf8')).toMatch(new RegExp(`^[0-9a-f]{64}  ${name.replace(/\./g, '\\.')}\n$`))
    const check = await run('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dist })
    expect(check.stdout).toBe(`${name}: OK\n`)
    expect(check.code).toBe(0)
    const list = await run('tar', ['tzf', name], { cwd: dist })
    expect(list.stdout.split('\n')).toEqual(expect.arrayContaining([`upkeep-1.4.0-1-g${commit.slice(0, 7)}/server.mjs`, `upkeep-1.4.0-1-g${commit.slice(0, 7)}/upkeep.mjs`, `upkeep-1.4.0-1-g${commit.slice(0, 7)}/web/index.html`]))
  })
})
