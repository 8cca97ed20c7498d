import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { expectedSha256, parseSha256Sums, sha256File, verifySha256 } from '../../../updater/artifacts/checksums'
import { sha256 } from '../../support/artifacts'

const A = 'a'.repeat(64)
const B = 'B'.repeat(64)

describe('parseSha256Sums', () => {
  test.each([
    ['text mode', `${A}  widget-1.2.0.tar.gz\n`, [{ sha256: A, name: 'widget-1.2.0.tar.gz' }]],
    ['binary mode, no final newline, upper-case hex', `${B} *widget-1.2.0.tar.gz`, [{ sha256: 'b'.repeat(64), name: 'widget-1.2.0.tar.gz' }]],
    ['several files, ./ prefix', `${A}  ./one.tar.gz\n${B}  two.zip\n`, [{ sha256: A, name: 'one.tar.gz' }, { sha256: 'b'.repeat(64), name: 'two.zip' }]],
    ['a name with spaces', `${A}  my app.tar.gz\n`, [{ sha256: A, name: 'my app.tar.gz' }]],
  ])('reads %s', (_n, text, expected) => {
    expect(parseSha256Sums(text)).toEqual(expected)
  })

  test.each([
    ['an empty file', '', /lists no file/],
    ['a short hash', `${'a'.repeat(63)}  x.tar.gz\n`, /line 1 is not/],
    ['one space only', `${A} x.tar.gz\n`, /line 1 is not/],
    ['a blank line', `${A}  x.tar.gz\n\n`, /line 2 is not/],
    ['CRLF line ends', `${A}  x.tar.gz\r\n`, /line 1 is not/],
    ['an escaped name', `\\${A}  x\\\\y.tar.gz\n`, /line 1 is not/],
    ['an HTML error page', '<html><body>Not Found</body></html>\n', /line 1 is not/],
    ['a name listed twice', `${A}  x.tar.gz\n${B}  x.tar.gz\n`, /x\.tar\.gz is listed twice/],
    ['a huge file', `${A}  x\n`.repeat(2000), /larger than 65536 bytes/],
  ])('refuses %s', (_n, text, message) => {
    expect(() => parseSha256Sums(text)).toThrow(message)
    try {
      parseSha256Sums(text)
    } catch (err) {
      expect(err).toMatchObject({ code: 'CHECKSUM_MISMATCH', hint: expect.stringMatching(/sha256sum/) })
    }
  })
})

describe('expectedSha256', () => {
  const sums = parseSha256Sums(`${A}  widget-1.2.0.tar.gz\n${B}  widget-1.2.0.zip\n`)
  test('finds the artifact', () => {
    expect(expectedSha256(sums, 'widget-1.2.0.tar.gz')).toBe(A)
  })
  test('refuses a list that names other files only (must show 2)', () => {
    expect(() => expectedSha256(sums, 'widget-1.3.0.tar.gz')).toThrow('SHA256SUMS has no checksum for widget-1.3.0.tar.gz (it lists widget-1.2.0.tar.gz, widget-1.2.0.zip)')
  })
})

describe('sha256File / verifySha256', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'upkeep-sums-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  test('hashes a file as a stream, like sha256sum', async () => {
    const data = Buffer.alloc(3 << 20, 7)
    const file = path.join(dir, 'big')
    await writeFile(file, data)
    expect(await sha256File(file)).toBe(sha256(data))
    await expect(verifySha256(file, sha256(data).toUpperCase(), 'big')).resolves.toBeUndefined()
  })

  test('a file whose checksum differs is refused (must show 2)', async () => {
    const file = path.join(dir, 'widget-1.2.0.tar.gz')
    await writeFile(file, 'tampered')
    await expect(verifySha256(file, A, 'widget-1.2.0.tar.gz')).rejects.toMatchObject({
      code: 'CHECKSUM_MISMATCH',
      message: `widget-1.2.0.tar.gz does not match its checksum: sha256 ${sha256('tampered')}, SHA256SUMS says ${A}`,
    })
  })
})
