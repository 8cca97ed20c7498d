import { describe, expect, test } from 'vitest'
import { expandCommand, parseRepoBuildConfig, planBuild } from '../../updater/app-config'
import { parseAppDefinition } from '../../updater/shared/apps/definition'
import { upkeepDefinition } from '../../updater/shared/apps/builtin'
import { ConfigError, parseConfig } from '../../updater/shared/config'

const app = (build: Record<string, unknown> = {}) =>
  parseAppDefinition({ name: 'notes', checkout: '/srv/notes', build, run: { units: ['notes.service'] }, health: { url: 'http://127.0.0.1:3000/health' } })
const withDeps = (def: ReturnType<typeof app>) => ({ ...def, dependencies: { lockfiles: ['package-lock.json'], dirs: ['node_modules'], install: ['npm', 'ci'] } })
const upkeep = upkeepDefinition(parseConfig({}, { appDir: '/opt/upkeep', cwd: '/' }))

describe('parseRepoBuildConfig (upkeep.json in a release)', () => {
  test('no file: nothing said', () => {
    expect(parseRepoBuildConfig(undefined)).toEqual({})
  })
  test('every key', () => {
    expect(parseRepoBuildConfig({ buildCommands: [['make', 'release']], outDir: 'dist', serverEntry: 'bin/server.js', healthPath: '/healthz' })).toEqual({
      buildCommands: [['make', 'release']],
      outDir: 'dist',
      serverEntry: 'bin/server.js',
      healthPath: '/healthz',
    })
  })
  test.each([
    ['not an object', [], 'must be a JSON object'],
    ['an unknown key', { build: 'npm run build' }, 'unknown key "build"'],
    ['a shell string as command', { buildCommands: ['npm ci && npm run build'] }, 'each build command must be a non-empty list of strings'],
    ['no commands', { buildCommands: [] }, 'non-empty list of commands'],
    ['an outDir outside the repo', { outDir: '../elsewhere' }, 'outDir must be'],
    ['an absolute serverEntry', { serverEntry: '/usr/bin/node' }, 'serverEntry must be'],
    ['a healthPath without slash', { healthPath: 'health' }, 'healthPath must be'],
  ])('rejects %s', (_n, value, message) => {
    expect(() => parseRepoBuildConfig(value)).toThrow(message)
  })
})

describe('planBuild: the host definition first, then the release', () => {
  test.each([
    ['Upkeep without upkeep.json: npm ci as its dependency install, then npm run build -- --out {out}, server.mjs', upkeep, {}, { install: ['npm', 'ci', '--no-audit', '--no-fund'], commands: [['npm', 'run', 'build', '--', '--out', '{out}']], output: '{out}', serverEntry: 'server.mjs' }],
    ['Upkeep with a release that says otherwise', upkeep, { buildCommands: [['make']], outDir: 'dist', serverEntry: 'app.mjs' }, { commands: [['make']], output: 'dist', serverEntry: 'app.mjs' }],
    ['an app without commands anywhere builds nothing', app(), {}, { commands: [], output: '{out}' }],
    ['an app takes the release’s commands', app(), { buildCommands: [['go', 'build']] }, { commands: [['go', 'build']], output: '{out}' }],
    ['the host’s commands win over the release’s', app({ commands: [['npm', 'ci']] }), { buildCommands: [['rm', '-rf', '/']] }, { commands: [['npm', 'ci']], output: '{out}' }],
    ['the host’s output wins', app({ output: 'dist' }), { outDir: 'build' }, { commands: [], output: 'dist' }],
    [
      'an app’s dependency install runs once, before the release’s commands that list it too',
      withDeps(app()),
      { buildCommands: [['npm', 'ci'], ['npm', 'run', 'build']] },
      { install: ['npm', 'ci'], commands: [['npm', 'run', 'build']], output: '{out}' },
    ],
    ['Upkeep’s built-in install is left to a release whose upkeep.json lists its own commands', upkeep, { buildCommands: [['ln', '-s', 'x', 'node_modules'], ['npm', 'run', 'build']] }, { commands: [['ln', '-s', 'x', 'node_modules'], ['npm', 'run', 'build']], output: '{out}', serverEntry: 'server.mjs' }],
  ])('%s', (_n, def, repo, plan) => {
    expect(planBuild(def, repo)).toEqual(plan)
  })
  test('{out} is replaced in every argument', () => {
    expect(expandCommand(['npm', 'run', 'build', '--', '--out', '{out}', 'x={out}/y'], '/o')).toEqual(['npm', 'run', 'build', '--', '--out', '/o', 'x=/o/y'])
  })
})

describe('the update engine knobs (config)', () => {
  const parse = (env: Record<string, string>) => parseConfig(env, { appDir: '/a', cwd: '/' })
  test('defaults: 60 s health timeout, 5 backups, 30 min stale limit', () => {
    expect(parse({})).toMatchObject({ healthTimeoutMs: 60_000, backupKeep: 5, staleAfterMs: 1_800_000 })
  })
  test('set', () => {
    expect(parse({ UPKEEP_HEALTH_TIMEOUT: '5', UPKEEP_BACKUP_KEEP: '2', UPKEEP_STALE_AFTER: '600' })).toMatchObject({ healthTimeoutMs: 5000, backupKeep: 2, staleAfterMs: 600_000 })
  })
  test('bad values name every variable', () => {
    try {
      parse({ UPKEEP_HEALTH_TIMEOUT: 'soon', UPKEEP_BACKUP_KEEP: '0' })
      expect.unreachable()
    } catch (err) {
      expect((err as ConfigError).variables).toEqual(['UPKEEP_HEALTH_TIMEOUT', 'UPKEEP_BACKUP_KEEP'])
    }
  })
})
