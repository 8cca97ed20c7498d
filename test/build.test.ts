import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
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

  test('node server.mjs runs without node_modules and answers /api/health', async () => {
    const port = await freePort()
    const dataDir = path.join(work, 'data')
    const server = (await import('node:child_process')).spawn(process.execPath, [path.join(out, 'server.mjs')], {
      cwd: path.join(work, 'elsewhere'),
      env: { PATH: process.env.PATH, PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: 'warn' },
      stdio: 'ignore',
    })
    try {
      const health = await waitForJson<Record<string, string>>(`http://127.0.0.1:${port}/api/health`)
      expect(health).toMatchObject({ status: 'ok', version: `1.4.0-1-g${commit.slice(0, 7)}`, commit })
      const index = await fetch(`http://127.0.0.1:${port}/`)
      expect(index.status).toBe(200)
      expect(await index.text()).toContain('<title>Upkeep</title>')
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
