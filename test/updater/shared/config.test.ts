import { describe, expect, test } from 'vitest'
import { ConfigError, parseConfig, type Env } from '../../../updater/shared/config'

const defaults = { appDir: '/srv/app', cwd: '/home/op' }

function problemsOf(env: Env): string[] {
  try {
    parseConfig(env, defaults)
  } catch (err) {
    if (err instanceof ConfigError) return err.variables
    throw err
  }
  return []
}

describe('parseConfig', () => {
  test('defaults', () => {
    expect(parseConfig({}, defaults)).toEqual({
      port: 8080,
      host: '127.0.0.1',
      appDir: '/srv/app',
      dataDir: '/srv/app/data',
      backupDir: '/srv/app/backups',
      updateRepo: undefined,
      githubToken: undefined,
      adminPassword: undefined,
      githubApiUrl: 'https://api.github.com',
      updateCheckDisabled: false,
      serviceManager: 'process',
      logLevel: 'info',
      stateDir: '/srv/app/data/state',
      appsDir: '/etc/upkeep/apps',
      healthTimeoutMs: 60_000,
      backupKeep: 5,
      staleAfterMs: 1_800_000,
      allowedHosts: [],
      soakMs: 0,
    })
  })

  test('under systemd the apps\' state lives in a directory of root\'s, not in the data dir', () => {
    expect(parseConfig({ UPKEEP_SERVICE_MANAGER: 'systemd' }, defaults).stateDir).toBe('/var/lib/upkeep-apps')
  })

  test('every variable is read', () => {
    const c = parseConfig(
      {
        PORT: '18123',
        HOST: '0.0.0.0',
        APP_DIR: 'app',
        DATA_DIR: '/var/lib/upkeep',
        BACKUP_DIR: 'bk',
        UPDATE_REPO: 'acme/widget',
        GITHUB_TOKEN: 'ghp_x',
        UPKEEP_ADMIN_PASSWORD: ' long enough ',
        GITHUB_API_URL: 'https://ghe.example.com/api/v3/',
        UPDATE_CHECK_DISABLED: 'true',
        UPKEEP_SERVICE_MANAGER: 'systemd',
        LOG_LEVEL: 'DEBUG',
        UPKEEP_STATE_DIR: 'state',
        UPKEEP_APPS_DIR: '/etc/apps',
        UPKEEP_HEALTH_TIMEOUT: '9',
        UPKEEP_BACKUP_KEEP: '2',
        UPKEEP_STALE_AFTER: '600',
        UPKEEP_ALLOWED_HOSTS: 'upkeep.example.com',
        UPKEEP_SOAK: '30',
      },
      defaults,
    )
    expect(c).toEqual({
      port: 18123,
      host: '0.0.0.0',
      appDir: '/home/op/app',
      dataDir: '/var/lib/upkeep',
      backupDir: '/home/op/bk',
      updateRepo: 'acme/widget',
      githubToken: 'ghp_x',
      adminPassword: ' long enough ',
      githubApiUrl: 'https://ghe.example.com/api/v3',
      updateCheckDisabled: true,
      serviceManager: 'systemd',
      logLevel: 'debug',
      stateDir: '/home/op/state',
      appsDir: '/etc/apps',
      healthTimeoutMs: 9000,
      backupKeep: 2,
      staleAfterMs: 600_000,
      allowedHosts: ['upkeep.example.com'],
      soakMs: 30_000,
    })
  })

  test('DATA_DIR and BACKUP_DIR follow APP_DIR', () => {
    const c = parseConfig({ APP_DIR: '/opt/upkeep' }, defaults)
    expect([c.dataDir, c.backupDir]).toEqual(['/opt/upkeep/data', '/opt/upkeep/backups'])
  })

  test('empty values count as unset', () => {
    expect(parseConfig({ PORT: '', LOG_LEVEL: ' ', UPDATE_REPO: '' }, defaults)).toMatchObject({ port: 8080, logLevel: 'info', updateRepo: undefined })
  })

  test('the service manager is detected from systemd’s INVOCATION_ID', () => {
    expect(parseConfig({ INVOCATION_ID: 'abc' }, defaults).serviceManager).toBe('systemd')
    expect(parseConfig({ INVOCATION_ID: 'abc', UPKEEP_SERVICE_MANAGER: 'process' }, defaults).serviceManager).toBe('process')
  })

  test.each([
    [{ PORT: 'abc' }, ['PORT']],
    [{ PORT: '65536' }, ['PORT']],
    [{ PORT: '-1' }, ['PORT']],
    [{ PORT: '80.5' }, ['PORT']],
    [{ HOST: 'a b' }, ['HOST']],
    [{ GITHUB_API_URL: 'not a url' }, ['GITHUB_API_URL']],
    [{ GITHUB_API_URL: 'ftp://example.com' }, ['GITHUB_API_URL']],
    [{ UPDATE_CHECK_DISABLED: 'maybe' }, ['UPDATE_CHECK_DISABLED']],
    [{ UPKEEP_SERVICE_MANAGER: 'docker' }, ['UPKEEP_SERVICE_MANAGER']],
    [{ LOG_LEVEL: 'loud' }, ['LOG_LEVEL']],
    [{ PORT: 'x', LOG_LEVEL: 'y' }, ['PORT', 'LOG_LEVEL']],
    [{ UPDATE_REPO: 'x;rm -rf /' }, ['UPDATE_REPO']],
    [{ UPDATE_REPO: '--upload-pack=evil/x' }, ['UPDATE_REPO']],
    [{ UPDATE_REPO: 'a/../b' }, ['UPDATE_REPO']],
    [{ UPDATE_REPO: 'https://github.com/acme/widget' }, ['UPDATE_REPO']],
    [{ UPKEEP_ADMIN_PASSWORD: 'short' }, ['UPKEEP_ADMIN_PASSWORD']],
    [{ UPKEEP_ALLOWED_HOSTS: 'https://upkeep.example.com' }, ['UPKEEP_ALLOWED_HOSTS']],
    [{ UPKEEP_ALLOWED_HOSTS: 'upkeep.example.com:8443' }, ['UPKEEP_ALLOWED_HOSTS']],
    [{ UPKEEP_ALLOWED_HOSTS: 'upkeep.example.com/ui' }, ['UPKEEP_ALLOWED_HOSTS']],
    [{ UPKEEP_ALLOWED_HOSTS: 'a b.example' }, ['UPKEEP_ALLOWED_HOSTS']],
    [{ UPKEEP_ALLOWED_HOSTS: '-bad.example' }, ['UPKEEP_ALLOWED_HOSTS']],
    [{ UPKEEP_ALLOWED_HOSTS: '*.example.com' }, ['UPKEEP_ALLOWED_HOSTS']],
    [{ UPKEEP_ALLOWED_HOSTS: '*,upkeep.lan' }, ['UPKEEP_ALLOWED_HOSTS']],
    [{ UPKEEP_SOAK: '2m' }, ['UPKEEP_SOAK']],
  ])('%o is rejected naming %o', (env, variables) => {
    expect(problemsOf(env)).toEqual(variables)
  })

  test.each([
    [undefined, []],
    ['', []],
    ['upkeep.example.com', ['upkeep.example.com']],
    [' Upkeep.Example.COM. , upkeep.lan,, ', ['upkeep.example.com', 'upkeep.lan']],
    ['192.168.1.5,[::1]', ['192.168.1.5', '[::1]']],
    ['*', '*'],
    [' * ', '*'],
  ])('UPKEEP_ALLOWED_HOSTS=%j → %j', (raw, allowedHosts) => {
    expect(parseConfig(raw === undefined ? {} : { UPKEEP_ALLOWED_HOSTS: raw }, defaults).allowedHosts).toEqual(allowedHosts)
  })

  test('a bad UPKEEP_ALLOWED_HOSTS entry is named and the form explained', () => {
    expect(() => parseConfig({ UPKEEP_ALLOWED_HOSTS: 'ok.example,https://upkeep.example.com' }, defaults)).toThrow(
      'UPKEEP_ALLOWED_HOSTS: must be host names separated by commas, without scheme or port (e.g. upkeep.example.com,upkeep.lan), or *; got "https://upkeep.example.com"',
    )
  })

  test('a bad UPDATE_REPO is named, quoted and explained', () => {
    expect(() => parseConfig({ UPDATE_REPO: 'x;rm -rf /' }, defaults)).toThrow(
      /^UPDATE_REPO: must be a GitHub repository owner\/name, got "x;rm -rf \/": ";" cannot be part of a repository name \(use owner\/name, e\.g\. acme\/widget/,
    )
    expect(parseConfig({ UPDATE_REPO: 'acme/widget.js' }, defaults).updateRepo).toBe('acme/widget.js')
  })

  test('the message names the variable and the bad value', () => {
    expect(() => parseConfig({ PORT: 'abc' }, defaults)).toThrow(/PORT: must be a port number from 0 to 65535, got "abc"/)
  })
})
