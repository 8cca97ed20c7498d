import { expect, test } from 'vitest'
import { createAppPaths, createManagerPaths, findCheckoutRoot } from '../../../updater/shared/paths'

test('findCheckoutRoot walks up to the directory holding .git', () => {
  const exists = (p: string) => p === '/opt/upkeep/.git'
  expect(findCheckoutRoot('/opt/upkeep/.upkeep/releases/v1.4.0', exists)).toBe('/opt/upkeep')
  expect(findCheckoutRoot('/opt/upkeep', exists)).toBe('/opt/upkeep')
  expect(findCheckoutRoot('/srv/elsewhere', exists)).toBeUndefined()
})

const manager = createManagerPaths({ appDir: '/opt/upkeep', dataDir: '/opt/upkeep/data', stateDir: '/var/lib/upkeep-apps', appsDir: '/etc/upkeep/apps' })

test('Upkeep itself: the on-disk layout of DESIGN.md, its update files in its data dir as always', () => {
  const p = createAppPaths({ name: 'upkeep', checkout: '/opt/upkeep', data: { paths: ['/opt/upkeep/data'], backupDir: '/opt/upkeep/backups' } }, manager)
  expect(p.current).toBe('/opt/upkeep/current')
  expect(p.serverBak).toBe('/opt/upkeep/server.bak')
  expect(p.release('v1.4.0')).toBe('/opt/upkeep/.upkeep/releases/v1.4.0')
  expect(p.staging('v1.4.0')).toBe('/opt/upkeep/.upkeep/staging/v1.4.0')
  expect(p.journal).toBe('/opt/upkeep/data/update-journal.json')
  expect(p.request).toBe('/opt/upkeep/data/update-request.json')
  expect(p.history).toBe('/opt/upkeep/data/update-history.jsonl')
  expect(p.backupDir).toBe('/opt/upkeep/backups')
})

test('another app: its state apart (root’s state root, its own directory), its request and release cache in Upkeep’s data dir', () => {
  const p = createAppPaths({ name: 'notes', checkout: '/srv/notes', data: { paths: ['/srv/notes/data'], backupDir: undefined } }, manager)
  expect(p.current).toBe('/srv/notes/current')
  expect(p.stateDir).toBe('/var/lib/upkeep-apps/notes')
  expect(p.journal).toBe('/var/lib/upkeep-apps/notes/update-journal.json')
  expect(p.lock).toBe('/var/lib/upkeep-apps/notes/update.lock')
  expect(p.backupDir).toBe('/var/lib/upkeep-apps/notes/backups')
  expect(p.request).toBe('/opt/upkeep/data/requests/notes.json')
  expect(p.releaseCache).toBe('/opt/upkeep/data/apps/notes/release-cache.json')
  expect(p.dataPaths).toEqual(['/srv/notes/data'])
})
