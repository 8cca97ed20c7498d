import { execFileSync } from 'node:child_process'
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { entryPath, symlinkEscapes, unpackTarGz } from '../../../updater/artifacts/unpack'
import { UpdateError } from '../../../updater/shared/errors'
import { goodEntries, makeTar, makeTarGz, retype, type TarEntry } from '../../support/artifacts'
import { commitAll, git, initRepo } from '../../support/git-fixtures'

let dir: string
let n = 0
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'upkeep-unpack-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function archive(entries: TarEntry[] | Buffer): Promise<{ file: string; dest: string }> {
  const file = path.join(dir, `a${++n}.tar.gz`)
  await writeFile(file, Buffer.isBuffer(entries) ? entries : await makeTarGz(entries))
  return { file, dest: path.join(dir, `release-${n}`) }
}

/** The refusal, after checking that nothing was left: no destination, no temporary directory. */
async function refusal(entries: TarEntry[] | Buffer, limits?: { maxBytes: number; maxEntries: number }): Promise<UpdateError> {
  const { file, dest } = await archive(entries)
  const err = await unpackTarGz(file, dest, limits).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(UpdateError)
  await expect(lstat(dest)).rejects.toMatchObject({ code: 'ENOENT' })
  expect((await readdir(dir)).filter((f) => f.includes('.unpack-'))).toEqual([])
  return err as UpdateError
}

describe('entryPath', () => {
  test.each([
    ['a/b/c', ['a', 'b', 'c']],
    ['./a//b/', ['a', 'b']],
    ['./', []],
    ['/etc/passwd', 'an absolute path'],
    ['a/../../x', 'a ".." component'],
    ['..', 'a ".." component'],
    ['a/..b/c', ['a', '..b', 'c']],
  ])('%s', (name, expected) => {
    expect(entryPath(name)).toEqual(expected)
  })
})

describe('symlinkEscapes', () => {
  const nodes = (spec: Record<string, string | null>) =>
    new Map(Object.entries(spec).map(([k, v]) => [k, v === null ? ({ kind: 'dir' } as const) : ({ kind: 'symlink', target: v } as const)]))
  test.each([
    ['a sibling', { a: null, 'a/l': '../b', b: null }, 'a/l', false],
    ['the release root', { a: null, 'a/l': '..' }, 'a/l', false],
    ['the parent', { a: null, 'a/l': '../..' }, 'a/l', true],
    ['an absolute path', { l: '/etc' }, 'l', true],
    ['a dangling link inside', { l: 'missing/file' }, 'l', false],
    // Looks inside lexically, resolves outside: up -> . makes up/.. the release's parent.
    ['through another link', { up: '.', a: null, 'a/l': '../up/..' }, 'a/l', true],
    ['deeper through another link', { deep: 'x/y', x: null, 'x/y': null, l: 'deep/../..' }, 'l', false],
    ['a loop', { l1: 'l2', l2: 'l1' }, 'l1', true],
  ])('%s', (_name, spec, link, escapes) => {
    expect(symlinkEscapes(nodes(spec), link.split('/'))).toBe(escapes)
  })
})

describe('unpackTarGz', () => {
  test('unpacks a release, stripping its one top-level directory, keeping rwx modes and inside links', async () => {
    const { file, dest } = await archive(goodEntries())
    const result = await unpackTarGz(file, dest)
    expect(result).toEqual({ files: 3, bytes: expect.any(Number), stripped: 'widget-1.2.0' })
    expect((await readdir(dest)).sort()).toEqual(['bin', 'current-server.mjs', 'public', 'server.mjs'])
    expect(await readFile(path.join(dest, 'server.mjs'), 'utf8')).toBe('console.log("widget 1.2.0")\n')
    expect((await stat(path.join(dest, 'bin/widget'))).mode & 0o7777).toBe(0o755)
    expect((await stat(path.join(dest, 'server.mjs'))).mode & 0o7777).toBe(0o644)
    expect(await readlink(path.join(dest, 'bin/public'))).toBe('../public')
    expect(await readFile(path.join(dest, 'bin/public/index.html'), 'utf8')).toBe('<h1>widget</h1>\n')
    expect((await readdir(dir)).filter((f) => f.includes('.unpack-'))).toEqual([])
  })

  test('unpacks what GNU tar and git archive make (pax global header, ./ prefixes)', async () => {
    const src = path.join(dir, `src-${++n}`)
    await mkdir(path.join(src, 'widget-1.2.0/lib'), { recursive: true })
    await writeFile(path.join(src, 'widget-1.2.0/server.mjs'), 'ok\n')
    await writeFile(path.join(src, 'widget-1.2.0/lib/a.js'), 'a\n')
    await symlink('lib/a.js', path.join(src, 'widget-1.2.0/a.js'))
    const gnu = path.join(dir, `gnu-${n}.tar.gz`)
    execFileSync('tar', ['-czf', gnu, '-C', path.join(src, 'widget-1.2.0'), '.'])
    const fromGnu = path.join(dir, `release-gnu-${n}`)
    expect(await unpackTarGz(gnu, fromGnu)).toEqual({ files: 2, bytes: 5 })
    expect(await readFile(path.join(fromGnu, 'a.js'), 'utf8')).toBe('a\n')

    initRepo(path.join(src, 'widget-1.2.0'))
    commitAll(path.join(src, 'widget-1.2.0'), 'v1.2.0')
    const archived = path.join(dir, `git-${n}.tar.gz`)
    git(path.join(src, 'widget-1.2.0'), ['archive', '--format=tar.gz', '--prefix=widget-1.2.0/', '-o', archived, 'HEAD'])
    const fromGit = path.join(dir, `release-git-${n}`)
    expect(await unpackTarGz(archived, fromGit)).toEqual({ files: 2, bytes: 5, stripped: 'widget-1.2.0' })
    expect((await readdir(fromGit)).sort()).toEqual(['a.js', 'lib', 'server.mjs'])
  })

  test('keeps several top-level entries as they are', async () => {
    const { file, dest } = await archive([
      { name: 'server.mjs', content: 'x' },
      { name: 'lib/a.js', content: 'y' },
    ])
    expect(await unpackTarGz(file, dest)).toEqual({ files: 2, bytes: 2 })
    expect((await readdir(dest)).sort()).toEqual(['lib', 'server.mjs'])
  })

  test('a read-only directory in the archive stays removable by its owner', async () => {
    const { file, dest } = await archive([
      { name: 'app/', type: 'directory', mode: 0o555 },
      { name: 'app/ro/', type: 'directory', mode: 0o555 },
      { name: 'app/ro/f', content: 'x', mode: 0o444 },
    ])
    await unpackTarGz(file, dest)
    expect((await stat(path.join(dest, 'ro'))).mode & 0o777).toBe(0o755)
    expect((await stat(path.join(dest, 'ro/f'))).mode & 0o777).toBe(0o444)
  })

  // Must show 2: each hostile entry refuses the whole archive, and nothing is left.
  test.each<[string, TarEntry[], RegExp]>([
    ['a ../ path', [{ name: 'app/server.mjs', content: 'x' }, { name: 'app/../../evil', content: 'x' }], /entry "app\/..\/..\/evil" has a "\.\." component/],
    ['an absolute path', [{ name: 'app/x', content: 'x' }, { name: '/etc/cron.d/evil', content: 'x' }], /entry "\/etc\/cron.d\/evil" has an absolute path/],
    ['a symlink out of the release', [{ name: 'app/x', content: 'x' }, { name: 'app/etc', type: 'symlink', linkname: '../../etc' }], /symlink "app\/etc" -> "..\/..\/etc" points outside the release/],
    ['a symlink to the stripped directory\'s parent', [{ name: 'app/x', content: 'x' }, { name: 'app/up', type: 'symlink', linkname: '..' }], /symlink "app\/up" -> "\.\." points outside the release/],
    ['an absolute symlink', [{ name: 'app/passwd', type: 'symlink', linkname: '/etc/passwd' }], /symlink "app\/passwd" points to the absolute path "\/etc\/passwd"/],
    ['a file written through a symlink', [{ name: 'app/l', type: 'symlink', linkname: 'sub' }, { name: 'app/sub/', type: 'directory' }, { name: 'app/l/x', content: 'x' }], /entry "app\/l\/x" lies inside "app\/l", which is a symlink/],
    ['a hardlink', [{ name: 'app/x', content: 'x' }, { name: 'app/h', type: 'link', linkname: 'app/x' }], /entry "app\/h" is a hardlink/],
    ['a character device', [{ name: 'app/null', type: 'character-device' }], /entry "app\/null" is a device file/],
    ['a block device', [{ name: 'app/sda', type: 'block-device' }], /entry "app\/sda" is a device file/],
    ['a FIFO', [{ name: 'app/pipe', type: 'fifo' }], /entry "app\/pipe" is a FIFO/],
    ['a setuid bit', [{ name: 'app/bin', content: 'x', mode: 0o4755 }], /entry "app\/bin" has the setuid bit/],
    ['a setgid directory', [{ name: 'app/', type: 'directory', mode: 0o2755 }], /entry "app\/" has the setgid bit/],
    ['a sticky bit', [{ name: 'app/tmp/', type: 'directory', mode: 0o1777 }], /has the sticky bit/],
    ['a duplicate file', [{ name: 'app/x', content: 'a' }, { name: 'app/x', content: 'b' }], /entry "app\/x" is listed twice/],
  ])('refuses %s', async (_name, entries, message) => {
    const err = await refusal(entries)
    expect(err.code).toBe('UNSAFE_ARCHIVE')
    expect(err.message).toMatch(message)
    expect(err.message).toMatch(/nothing was unpacked$/)
    expect(err.hint).toMatch(/do not install it/)
  })

  test('refuses an archive that unpacks past the size limit, before writing the file that crosses it', async () => {
    const err = await refusal(
      [
        { name: 'app/a', content: Buffer.alloc(600, 1) },
        { name: 'app/b', content: Buffer.alloc(600, 2) },
      ],
      { maxBytes: 1000, maxEntries: 100 },
    )
    expect(err.code).toBe('UNSAFE_ARCHIVE')
    expect(err.message).toMatch(/unpacks to more than 1000 bytes/)
  })

  test('refuses a gzip bomb outside file data: a directory entry carrying 8 MB of zeros', async () => {
    // A file entry retyped as a directory: its data is read and thrown away, counted by no file size.
    const tarball = retype(await makeTar([{ name: 'app/d/', content: Buffer.alloc(8 << 20) }]), 0, '5')
    const err = await refusal(gzipSync(tarball), { maxBytes: 10, maxEntries: 10 })
    expect(err.code).toBe('UNSAFE_ARCHIVE')
    expect(err.message).toMatch(/unpacks to more than 10 bytes/)
  })

  test('refuses an oversized PAX header (tar-stream\'s own limit)', async () => {
    const err = await refusal([{ name: 'app/x', content: 'x', pax: { comment: 'z'.repeat(4 << 20) } }])
    expect(err.code).toBe('UNSAFE_ARCHIVE')
    expect(err.message).toMatch(/not a valid \.tar\.gz \(Header exceeds max size\)/)
  })

  test('refuses more entries than allowed', async () => {
    const err = await refusal(
      Array.from({ length: 6 }, (_, i) => ({ name: `app/f${i}`, content: 'x' })),
      { maxBytes: 1 << 20, maxEntries: 5 },
    )
    expect(err.message).toMatch(/more than 5 entries/)
  })

  test('refuses a truncated or corrupt archive', async () => {
    const whole = await makeTarGz(goodEntries())
    const cut = await refusal(whole.subarray(0, Math.floor(whole.length * 0.6)))
    expect(cut.code).toBe('UNSAFE_ARCHIVE')
    expect(cut.message).toMatch(/not a valid \.tar\.gz/)
    const garbage = await refusal(Buffer.from('this is not gzip at all'))
    expect(garbage.message).toMatch(/not a valid \.tar\.gz/)
  })

  test('refuses to unpack over an existing directory', async () => {
    const { file, dest } = await archive(goodEntries())
    await unpackTarGz(file, dest)
    await expect(unpackTarGz(file, dest)).rejects.toThrow(/it exists/)
  })
})
