import { execFileSync } from 'node:child_process'
import { access, lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { isUpdateId, MAX_REQUEST_BYTES, newUpdateId, parseUpdateRequest, takeUpdateRequest, writeUpdateRequest } from '../../../updater/shared/request'

const valid = { updateId: '20261123T100000Z-a1b2c3d4', version: 'v1.2.3', backup: true, requestedAt: '2026-11-23T10:00:00.000Z' }

describe('parseUpdateRequest: data from an internet-facing process is validated whole', () => {
  test('a well-formed request', () => {
    expect(parseUpdateRequest(valid)).toEqual(valid)
    const { version: _v, ...latest } = valid
    expect(parseUpdateRequest(latest)).toEqual(latest)
    // The scheduler's requests say so; the worker records them as `trigger: 'auto'`.
    expect(parseUpdateRequest({ ...valid, trigger: 'auto' })).toEqual({ ...valid, trigger: 'auto' })
  })
  test.each([
    ['a non-object', 'v1.2.3', 'not a JSON object'],
    ['an unknown field', { ...valid, cmd: 'rm -rf /' }, 'unknown field "cmd"'],
    ['a shell-ish version', { ...valid, version: 'v1.2.3;reboot' }, 'version must be a release tag'],
    ['an option as version', { ...valid, version: '--upload-pack=x' }, 'version must be a release tag'],
    ['a version without v', { ...valid, version: '1.2.3' }, 'version must be a release tag'],
    ['a malformed id', { ...valid, updateId: '../../etc/passwd' }, 'updateId is missing or malformed'],
    ['a non-boolean backup', { ...valid, backup: 'yes' }, 'backup must be true or false'],
    ['a bad time', { ...valid, requestedAt: 'yesterday' }, 'requestedAt must be an ISO time'],
    ['another trigger', { ...valid, trigger: 'cli' }, 'trigger must be "auto" when present'],
    ['a trigger that is not a string', { ...valid, trigger: ['auto'] }, 'trigger must be "auto" when present'],
  ])('rejects %s', (_name, value, message) => {
    expect(() => parseUpdateRequest(value)).toThrow(message)
  })
  test('update ids are unique and well-formed', () => {
    const ids = new Set(Array.from({ length: 100 }, () => newUpdateId()))
    expect(ids.size).toBe(100)
    for (const id of ids) expect(isUpdateId(id)).toBe(true)
  })
})

describe('the request file', () => {
  let dir: string
  let file: string
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'upkeep-req-'))
    file = path.join(dir, 'update-request.json')
  })
  afterEach(() => rm(dir, { recursive: true, force: true }))

  test('is written only when none is pending, and taken (deleted) once', async () => {
    expect(await writeUpdateRequest(file, valid)).toBe(true)
    expect(await writeUpdateRequest(file, { ...valid, updateId: newUpdateId() })).toBe(false)
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(valid)
    expect(await takeUpdateRequest(file)).toEqual({ ok: true, request: valid })
    await expect(access(file)).rejects.toThrow()
    expect(await takeUpdateRequest(file)).toBeUndefined()
  })

  test('a bad or oversized request is deleted and reported, never returned', async () => {
    await writeFile(file, '{"updateId": 1')
    expect(await takeUpdateRequest(file)).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST', message: 'update request is not valid JSON' } })
    await writeFile(file, 'x'.repeat(MAX_REQUEST_BYTES + 1))
    expect(await takeUpdateRequest(file)).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } })
    await expect(access(file)).rejects.toThrow()
  })

  describe('what a compromised server can plant as the request file', () => {

    test('a symlink is not followed, even to a valid request; the link is removed and its target kept', async () => {
      const target = path.join(dir, 'root-only.json')
      await writeFile(target, JSON.stringify(valid), { mode: 0o600 })
      await symlink(target, file)
      expect(await takeUpdateRequest(file)).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST', message: `update request refused: ${file} is a symbolic link` } })
      await expect(lstat(file)).rejects.toThrow()
      expect(JSON.parse(await readFile(target, 'utf8'))).toEqual(valid)
    })

    test('a FIFO is refused at once, without waiting for a writer', async () => {
      execFileSync('mkfifo', [file])
      const t0 = Date.now()
      expect(await takeUpdateRequest(file)).toMatchObject({ ok: false, error: { message: `update request refused: ${file} is not a regular file` } })
      expect(Date.now() - t0).toBeLessThan(1000)
      await expect(lstat(file)).rejects.toThrow()
    })

    test('a directory is refused and removed when empty', async () => {
      await mkdir(file)
      expect(await takeUpdateRequest(file)).toMatchObject({ ok: false, error: { message: `update request refused: ${file} is not a regular file` } })
      await expect(lstat(file)).rejects.toThrow()
    })

    test('1 MiB is refused without being read whole', async () => {
      await writeFile(file, JSON.stringify({ ...valid, pad: 'x'.repeat(1 << 20) }))
      expect(await takeUpdateRequest(file)).toMatchObject({ ok: false, error: { message: expect.stringMatching(/is \d+ bytes, more than 4096$/) } })
      await expect(lstat(file)).rejects.toThrow()
    })
  })
})
