import { expect, test } from 'vitest'
import { createPaths, findCheckoutRoot } from '../../../updater/shared/paths'

test('findCheckoutRoot walks up to the directory holding .git', () => {
  const exists = (p: string) => p === '/opt/upkeep/.git'
  expect(findCheckoutRoot('/opt/upkeep/.upkeep/releases/v1.4.0', exists)).toBe('/opt/upkeep')
  expect(findCheckoutRoot('/opt/upkeep', exists)).toBe('/opt/upkeep')
  expect(findCheckoutRoot('/srv/elsewhere', exists)).toBeUndefined()
})

test('the on-disk layout of DESIGN.md', () => {
  const p = createPaths({ appDir: '/opt/upkeep', dataDir: '/opt/upkeep/data', backupDir: '/opt/upkeep/backups' })
  expect(p.current).toBe('/opt/upkeep/current')
  expect(p.serverBak).toBe('/opt/upkeep/server.bak')
  expect(p.release('v1.4.0')).toBe('/opt/upkeep/.upkeep/releases/v1.4.0')
  expect(p.staging('v1.4.0')).toBe('/opt/upkeep/.upkeep/staging/v1.4.0')
  expect(p.journal).toBe('/opt/upkeep/data/update-journal.json')
  expect(p.request).toBe('/opt/upkeep/data/update-request.json')
  expect(p.history).toBe('/opt/upkeep/data/update-history.jsonl')
})
