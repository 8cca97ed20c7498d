import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, expect, test } from 'vitest'
import { writeFileAtomic, writeJsonAtomic } from '../../../updater/shared/atomic-write'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'upkeep-atomic-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

test('writes, replaces and leaves no temp file', async () => {
  const file = path.join(dir, 'sub', 'settings.json')
  await writeJsonAtomic(file, { a: 1 })
  await writeJsonAtomic(file, { a: 2 })
  expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ a: 2 })
  expect(await readdir(path.dirname(file))).toEqual(['settings.json'])
})

test('mode is exact, whatever the umask', async () => {
  const file = path.join(dir, 'secret')
  const old = process.umask(0o077)
  try {
    await writeFileAtomic(file, 'x', { mode: 0o640 })
  } finally {
    process.umask(old)
  }
  expect((await stat(file)).mode & 0o777).toBe(0o640)
})

test('a write that cannot be renamed into place fails and leaves no temp file', async () => {
  const taken = path.join(dir, 'taken')
  await mkdir(taken)
  await writeFile(path.join(taken, 'x'), '')
  await expect(writeFileAtomic(taken, 'new')).rejects.toThrow()
  expect(await readdir(dir)).toEqual(['taken'])
})
