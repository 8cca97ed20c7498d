import { describe, expect, test } from 'vitest'
import { DEFAULT_APP_CONFIG, expandCommand, parseAppConfig } from '../../updater/app-config'
import { ConfigError } from '../../updater/shared/config'
import { parseTunables } from '../../updater/tunables'

describe('parseAppConfig (upkeep.json)', () => {
  test('no file: npm ci, npm run build -- --out {out}, server.mjs', () => {
    expect(parseAppConfig(undefined)).toEqual(DEFAULT_APP_CONFIG)
    expect(expandCommand(DEFAULT_APP_CONFIG.buildCommands[1]!, '/o')).toEqual(['npm', 'run', 'build', '--', '--out', '/o'])
  })
  test('overrides', () => {
    expect(parseAppConfig({ buildCommands: [['make', 'release']], outDir: 'dist', serverEntry: 'bin/server.js', healthPath: '/healthz' })).toEqual({
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
    expect(() => parseAppConfig(value)).toThrow(message)
  })
})

describe('parseTunables', () => {
  test('defaults: 60 s health timeout, 5 backups, 30 min stale limit', () => {
    expect(parseTunables({})).toEqual({ healthTimeoutMs: 60_000, backupKeep: 5, staleAfterMs: 1_800_000 })
  })
  test('set', () => {
    expect(parseTunables({ UPKEEP_HEALTH_TIMEOUT: '5', UPKEEP_BACKUP_KEEP: '2', UPKEEP_STALE_AFTER: '600' })).toEqual({ healthTimeoutMs: 5000, backupKeep: 2, staleAfterMs: 600_000 })
  })
  test('bad values name every variable', () => {
    try {
      parseTunables({ UPKEEP_HEALTH_TIMEOUT: 'soon', UPKEEP_BACKUP_KEEP: '0' })
      expect.unreachable()
    } catch (err) {
      expect((err as ConfigError).variables).toEqual(['UPKEEP_HEALTH_TIMEOUT', 'UPKEEP_BACKUP_KEEP'])
    }
  })
})
