import { readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, test } from 'vitest'
import { REQUEST_INTERVAL_MS } from '../../updater/commands/updates'
import { repoRoot } from '../support/paths'
import { directives, installValues, renderUnit, UNIT_TEMPLATES } from '../support/units'

// What the unit templates promise, read statically. That they work is shown in the sandbox
// (install.test.ts: systemd-analyze verify and security, a running install).

const values = installValues({ dir: '/opt/upkeep', port: 8080 })
const rendered = Object.fromEntries(UNIT_TEMPLATES.map((u) => [u, renderUnit(u, values)])) as Record<(typeof UNIT_TEMPLATES)[number], string>
const get = (unit: string, key: string) => directives(unit).filter((d) => d.key === key).map((d) => d.value)

describe('deploy/ unit templates', () => {
  test.each(UNIT_TEMPLATES)('%s renders with no placeholder left and says how to change it', (name) => {
    expect(rendered[name]).not.toMatch(/\{\{[A-Z_]+\}\}/)
    const header = readFileSync(path.join(repoRoot, 'deploy', name), 'utf8').split('\n[')[0]!
    expect(header).toMatch(/install\.sh/)
  })

  test('upkeep.socket listens on the rendered address', () => {
    expect(get(rendered['upkeep.socket'], 'ListenStream')).toEqual(['127.0.0.1:8080'])
    expect(get(renderUnit('upkeep.socket', installValues({ dir: '/opt/upkeep', port: 9090, host: '::' })), 'ListenStream')).toEqual(['[::]:9090'])
  })

  test('upkeep.service: user upkeep, the socket as fd 3, restarts with a start limit, hardened, `systemctl edit` in its header', () => {
    const s = rendered['upkeep.service']
    expect(get(s, 'User')).toEqual(['upkeep'])
    expect(get(s, 'Requires')).toEqual(['upkeep.socket'])
    expect(get(s, 'ExecStart')).toEqual(['/usr/bin/node /opt/upkeep/current/upkeep.mjs serve'])
    expect(get(s, 'Restart')).toEqual(['on-failure'])
    expect(get(s, 'StartLimitBurst')).toHaveLength(1)
    expect(get(s, 'StartLimitIntervalSec')).toHaveLength(1)
    expect(s).toMatch(/systemctl edit upkeep\.service/)
    expect(s).toMatch(/^# Hardening/m)
    expect(get(s, 'ProtectSystem')).toEqual(['strict'])
    expect(get(s, 'ReadWritePaths')).toEqual(['/opt/upkeep/data'])
    expect(get(s, 'NoNewPrivileges')).toEqual(['yes'])
    // V8's JIT needs writable+executable memory.
    expect(get(s, 'MemoryDenyWriteExecute')).toEqual([])
    const env = get(s, 'Environment').join(' ')
    for (const v of ['APP_DIR=/opt/upkeep', 'DATA_DIR=/opt/upkeep/data', 'BACKUP_DIR=/opt/upkeep/backups', 'HOST=127.0.0.1', 'PORT=8080', 'UPKEEP_SERVICE_MANAGER=systemd']) {
      expect(env).toContain(v)
    }
  })

  test('upkeep-updater.path starts the updater when the request file appears', () => {
    expect(get(rendered['upkeep-updater.path'], 'PathExists')).toEqual(['/opt/upkeep/data/update-request.json'])
    // …and when a request for another app appears.
    expect(get(rendered['upkeep-updater.path'], 'PathExistsGlob')).toEqual(['/opt/upkeep/data/requests/*.json'])
    expect(get(rendered['upkeep-updater.path'], 'Unit')).toEqual(['upkeep-updater.service'])
  })

  test('upkeep-updater.service runs apply-request in a unit of its own that a server restart cannot take down', () => {
    const u = rendered['upkeep-updater.service']
    expect(get(u, 'ExecStart')).toEqual(['/usr/bin/node /opt/upkeep/current/upkeep.mjs apply-request'])
    for (const key of ['Requires', 'BindsTo', 'PartOf', 'Requisite']) expect(get(u, key)).toEqual([])
    expect(get(u, 'User')).toEqual(['root'])
    expect(get(u, 'CapabilityBoundingSet')).toEqual(['CAP_SETUID CAP_SETGID CAP_CHOWN'])
    expect(get(u, 'ReadWritePaths')).toEqual(['/opt/upkeep /opt/upkeep/data /opt/upkeep/backups /var/lib/upkeep -/var/lib/upkeep-apps'])
    const env = get(u, 'Environment').join(' ')
    for (const v of ['HOST=127.0.0.1', 'PORT=8080', 'UPKEEP_SERVICE_MANAGER=systemd', 'UPKEEP_USER=upkeep', 'UPKEEP_USER_HOME=/var/lib/upkeep']) expect(env).toContain(v)
    expect(get(u, 'MemoryDenyWriteExecute')).toEqual([])
  })

  test('every hardening directive of the updater says why it is there, or why one is not', () => {
    const text = readFileSync(path.join(repoRoot, 'deploy/upkeep-updater.service'), 'utf8')
    const block = text.slice(text.indexOf('# Hardening'))
    for (const key of ['NoNewPrivileges', 'CapabilityBoundingSet', 'ProtectSystem', 'PrivateTmp', 'ProtectHome', 'RestrictAddressFamilies', 'SystemCallFilter']) {
      // The comment lines right above the directive name it or explain it.
      const at = block.indexOf(`\n${key}=`)
      expect(at, key).toBeGreaterThan(0)
      expect(block.slice(Math.max(0, at - 400), at), key).toMatch(/\n# /)
    }
    const notHere = block.slice(block.indexOf('# Not here, on purpose'))
    expect(notHere.length).toBeGreaterThan(100)
    for (const absent of ['DynamicUser=', 'PrivateUsers=', 'PrivateNetwork=', 'IPAddressDeny=', 'MemoryDenyWriteExecute=', 'ProcSubset=', 'ProtectProc=', 'RemoveIPC=']) {
      expect(notHere).toContain(absent)
      expect(get(rendered['upkeep-updater.service'], absent.slice(0, -1))).toEqual([])
    }
  })

  test('a flood of requests cannot leave the updater unstartable: apply-request paces itself below both limits', () => {
    const trigger = { burst: Number(get(rendered['upkeep-updater.path'], 'TriggerLimitBurst')[0]), secs: parseFloat(get(rendered['upkeep-updater.path'], 'TriggerLimitIntervalSec')[0]!) }
    const start = { burst: Number(get(rendered['upkeep-updater.service'], 'StartLimitBurst')[0]), secs: parseFloat(get(rendered['upkeep-updater.service'], 'StartLimitIntervalSec')[0]!) }
    // One start per REQUEST_INTERVAL_MS at most, so each window sees fewer starts than its burst.
    const perWindow = (secs: number) => Math.ceil((secs * 1000) / REQUEST_INTERVAL_MS)
    expect(perWindow(trigger.secs)).toBeLessThan(trigger.burst)
    expect(perWindow(start.secs)).toBeLessThan(start.burst)
  })

  test('upkeep-recover.service runs recover --boot once per boot, before the server and the updater', () => {
    const u = rendered['upkeep-recover.service']
    expect(get(u, 'ExecStart')).toEqual(['/usr/bin/node /opt/upkeep/current/upkeep.mjs recover --boot'])
    expect(get(u, 'Type')).toEqual(['oneshot'])
    expect(get(u, 'RemainAfterExit')).toEqual(['yes'])
    expect(get(u, 'Before')).toEqual(['upkeep.service upkeep-updater.service'])
    expect(get(u, 'WantedBy')).toEqual(['multi-user.target'])
    expect(get(u, 'PrivateNetwork')).toEqual(['yes'])
    // Not pulled in by the server: a later start of upkeep.service must not re-run recovery mid-update.
    expect(get(rendered['upkeep.service'], 'Wants').join(' ')).not.toContain('upkeep-recover')
    expect(get(rendered['upkeep.service'], 'After').join(' ')).toContain('upkeep-recover.service')
  })
})
