import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { distroOf, parseMadison, parseOsRelease, planPackages } from '../../.ci/packages.mjs'
import { ensureCommand } from '../support/apt'
import { repoRoot } from '../support/paths'
import { run } from '../support/run'
import { DEBIAN_12, DEBIAN_WITH_CHROMIUM, FEDORA_41, MINT_22, UBUNTU_24_04, UBUNTU_RUNNER, UBUNTU_SNAP_ONLY } from './os-release-fixtures'

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
const BASE = ['git', 'ca-certificates', 'sqlite3', 'bsdutils', 'util-linux', 'shellcheck', 'openssh-client', 'golang-go']
const DEBIAN_SYSTEMD = '252.38-1~deb12u1'
const UBUNTU_SYSTEMD = '255.4-1ubuntu8.4'
const on = (files: string[]) => (f: string) => files.includes(f)

describe('parseOsRelease', () => {
  test.each([
    { text: DEBIAN_12, want: { id: 'debian', idLike: [], versionId: '12', prettyName: 'Debian GNU/Linux 12 (bookworm)' }, distro: 'debian' },
    { text: UBUNTU_24_04, want: { id: 'ubuntu', idLike: ['debian'], versionId: '24.04', prettyName: 'Ubuntu 24.04.1 LTS' }, distro: 'ubuntu' },
    { text: MINT_22, want: { id: 'linuxmint', idLike: ['ubuntu', 'debian'], versionId: '22', prettyName: 'Linux Mint 22' }, distro: 'ubuntu' },
    { text: FEDORA_41, want: { id: 'fedora', idLike: [], versionId: '41', prettyName: 'Fedora Linux 41 (Container Image)' }, distro: 'unknown' },
    { text: '', want: { id: '', idLike: [], versionId: '', prettyName: 'unknown' }, distro: 'unknown' },
  ])('$want.prettyName → $distro', ({ text, want, distro }) => {
    const os = parseOsRelease(text)
    expect(os).toEqual(want)
    expect(distroOf(os)).toBe(distro)
  })
})

test('parseMadison lists the versions apt offers, once each', () => {
  const text = [
    'systemd-container | 252.39-1~deb12u2 | http://deb.debian.org/debian bookworm/main amd64 Packages',
    'systemd-container | 252.38-1~deb12u1 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages',
    'systemd-container | 252.38-1~deb12u1 | http://deb.debian.org/debian-security bookworm-security/main arm64 Packages',
    '',
  ].join('\n')
  expect(parseMadison(text)).toEqual(['252.39-1~deb12u2', '252.38-1~deb12u1'])
  expect(parseMadison('')).toEqual([])
})

describe('planPackages', () => {
  test.each([
    {
      name: 'Debian 12 with Chromium (this project’s own machines): as before, plus openssh-client',
      os: DEBIAN_12, files: DEBIAN_WITH_CHROMIUM, systemdVersion: DEBIAN_SYSTEMD, containerVersions: undefined,
      packages: [...BASE, `systemd-container=${DEBIAN_SYSTEMD}`, 'chromium'], browser: '/usr/bin/chromium',
    },
    {
      name: 'Debian 12, fresh: Chromium to install, systemd-container pinned',
      os: DEBIAN_12, files: [], systemdVersion: DEBIAN_SYSTEMD, containerVersions: ['252.39-1~deb12u2', DEBIAN_SYSTEMD],
      packages: [...BASE, `systemd-container=${DEBIAN_SYSTEMD}`, 'chromium'], browser: '/usr/bin/chromium',
    },
    {
      name: 'Debian 12 with Google Chrome only: no Chromium',
      os: DEBIAN_12, files: ['/usr/bin/google-chrome'], systemdVersion: DEBIAN_SYSTEMD, containerVersions: undefined,
      packages: [...BASE, `systemd-container=${DEBIAN_SYSTEMD}`], browser: '/usr/bin/google-chrome',
    },
    {
      name: 'Ubuntu 24.04 runner: Chrome is there, no chromium (a snap) installed',
      os: UBUNTU_24_04, files: UBUNTU_RUNNER, systemdVersion: UBUNTU_SYSTEMD, containerVersions: [UBUNTU_SYSTEMD, '255.4-1ubuntu8'],
      packages: [...BASE, `systemd-container=${UBUNTU_SYSTEMD}`], browser: '/usr/bin/google-chrome',
    },
    {
      name: 'Ubuntu 24.04 runner whose systemd the archive has moved past: systemd and systemd-container together',
      os: UBUNTU_24_04, files: UBUNTU_RUNNER, systemdVersion: UBUNTU_SYSTEMD, containerVersions: ['255.4-1ubuntu8.6', '255.4-1ubuntu8'],
      packages: [...BASE, 'systemd', 'systemd-container'], browser: '/usr/bin/google-chrome',
    },
    {
      name: 'a container without systemd: systemd and systemd-container',
      os: DEBIAN_12, files: DEBIAN_WITH_CHROMIUM, systemdVersion: undefined, containerVersions: undefined,
      packages: [...BASE, 'systemd', 'systemd-container', 'chromium'], browser: '/usr/bin/chromium',
    },
    {
      name: 'Linux Mint (like Ubuntu): as Ubuntu',
      os: MINT_22, files: ['/opt/google/chrome/chrome', ...UBUNTU_SNAP_ONLY], systemdVersion: UBUNTU_SYSTEMD, containerVersions: undefined,
      packages: [...BASE, `systemd-container=${UBUNTU_SYSTEMD}`], browser: '/opt/google/chrome/chrome',
    },
  ])('$name', ({ os, files, systemdVersion, containerVersions, packages, browser }) => {
    const plan = planPackages({ os: parseOsRelease(os), env: { PATH }, exists: on(files), systemdVersion, containerVersions })
    expect(plan.problems).toEqual([])
    expect(plan.packages).toEqual(packages)
    expect(plan.browser.path).toBe(browser)
    expect(plan.notes).toContain(`browser: ${plan.browser.source}: ${browser}`)
  })

  test('Ubuntu 24.04 without Chrome: a problem with what to do, and never chromium or chromium-browser', () => {
    const plan = planPackages({ os: parseOsRelease(UBUNTU_24_04), env: { PATH }, exists: on(UBUNTU_SNAP_ONLY), systemdVersion: UBUNTU_SYSTEMD })
    expect(plan.packages.filter((p) => p.startsWith('chromium'))).toEqual([])
    expect(plan.problems).toEqual([{ error: expect.stringContaining('snap'), hint: expect.stringContaining('google-chrome-stable') }])
  })

  test('the notes say why systemd moves', () => {
    const plan = planPackages({ os: parseOsRelease(UBUNTU_24_04), env: { PATH }, exists: on(UBUNTU_RUNNER), systemdVersion: UBUNTU_SYSTEMD, containerVersions: ['255.4-1ubuntu8.6'] })
    expect(plan.notes).toContain(`systemd-container ${UBUNTU_SYSTEMD} (the installed systemd) is no longer offered by apt (255.4-1ubuntu8.6): upgrading systemd and systemd-container together`)
  })
})

describe('node .ci/packages.mjs and .ci/install-packages on this machine', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'upkeep-ci-packages-'))
    await writeFile(path.join(dir, 'debian'), DEBIAN_12)
    await writeFile(path.join(dir, 'ubuntu'), UBUNTU_24_04)
  })
  afterAll(() => rm(dir, { recursive: true, force: true }))
  const plan = (osRelease: string, env: Record<string, string>) =>
    run(process.execPath, [path.join(repoRoot, '.ci/packages.mjs'), '--os-release', path.join(dir, osRelease)], { env: { PATH: process.env.PATH ?? PATH, ...env } })

  test('prints the packages one a line, the reasons on stderr', async () => {
    const r = await plan('debian', { UPKEEP_TEST_BROWSER: process.execPath })
    expect(r.code).toBe(0)
    const lines = r.stdout.trim().split('\n')
    expect(lines.slice(0, BASE.length)).toEqual(BASE)
    expect(lines.at(-1)).toMatch(/^systemd-container(=\S+)?$/)
    expect(r.stderr).toContain('distribution: Debian GNU/Linux 12 (bookworm) (debian package names)')
    expect(r.stderr).toContain(`browser: $UPKEEP_TEST_BROWSER: ${process.execPath}`)
  })

  test('exits 1 with the hint when the tests cannot run (no browser)', async () => {
    const r = await plan('ubuntu', { UPKEEP_TEST_BROWSER: '/nowhere/chrome' })
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr).toContain('error: UPKEEP_TEST_BROWSER=/nowhere/chrome is not an executable file\n  point UPKEEP_TEST_BROWSER at')
  })

  test('install-packages --dry-run prints the plan and the apt commands, which wait for the dpkg lock', async () => {
    const r = await run('bash', [path.join(repoRoot, '.ci/install-packages'), '--dry-run'], { env: { PATH: process.env.PATH ?? PATH } })
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^ {2}packages: git ca-certificates sqlite3 bsdutils util-linux shellcheck openssh-client golang-go systemd-container/m)
    expect(r.stdout).toContain('apt-get -o DPkg::Lock::Timeout=600 update -q')
    expect(r.stdout).toMatch(/apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends \S/)
  })

  test('the CI scripts and the test launcher pass shellcheck', async () => {
    const shellcheck = ensureCommand('shellcheck', ['shellcheck'], { purpose: 'the CI scripts lint test' })
    const r = await run(shellcheck, ['--shell=bash', ...['.ci/run', '.ci/install-packages', '.ci/apt.sh'].map((f) => path.join(repoRoot, f))])
    expect(r.stdout + r.stderr).toBe('')
    expect(r.code).toBe(0)
    const launcher = await run(shellcheck, ['--shell=sh', path.join(repoRoot, 'test/run.sh')])
    expect(launcher.stdout + launcher.stderr).toBe('')
    expect(launcher.code).toBe(0)
  })
})
