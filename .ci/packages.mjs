// What .ci/run installs with apt, decided for Debian 12 and Ubuntu 24.04 (GitHub's runners).
// Dependency-free: .ci/run asks it before `npm ci`. The decision (planPackages) is pure and
// tested table-driven (test/ci/packages.test.ts); run directly, this file gathers the facts of
// this machine and prints the packages, one a line, with the reasons on stderr.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { DEBIAN_CHROMIUM, findBrowser, isExecutable } from './browser.mjs'

// git and ca-certificates for the git tests; sqlite3 for backups of live databases (.backup);
// bsdutils for script(1) (the set-password test's terminal); util-linux for nsenter/unshare/
// runuser/setpriv; shellcheck lints install.sh and the CI scripts; openssh-client's ssh-keygen
// signs and verifies releases. The same names on Debian 12 and Ubuntu 24.04.
// golang-go: the Go test apps are built with Debian's Go, never a downloaded toolchain.
const BASE = ['git', 'ca-certificates', 'sqlite3', 'bsdutils', 'util-linux', 'shellcheck', 'openssh-client', 'golang-go']

/**
 * os-release(5): KEY=value lines, values optionally quoted.
 * @param {string} text
 * @returns {{ id: string, idLike: string[], versionId: string, prettyName: string }}
 */
export function parseOsRelease(text) {
  /** @type {Record<string, string>} */
  const fields = {}
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim())
    if (!m) continue
    let value = m[2]
    const q = value[0]
    if ((q === '"' || q === "'") && value.endsWith(q) && value.length >= 2) value = value.slice(1, -1)
    fields[m[1]] = value.replace(/\\(["'$`\\])/g, '$1')
  }
  return {
    id: (fields.ID ?? '').toLowerCase(),
    idLike: (fields.ID_LIKE ?? '').toLowerCase().split(/\s+/).filter(Boolean),
    versionId: fields.VERSION_ID ?? '',
    prettyName: fields.PRETTY_NAME ?? fields.NAME ?? 'unknown',
  }
}

/**
 * Ubuntu and its derivatives before Debian: Ubuntu says ID_LIKE=debian but packages Chromium as a snap.
 * @param {{ id: string, idLike: string[] }} os
 * @returns {'debian' | 'ubuntu' | 'unknown'}
 */
export function distroOf(os) {
  const ids = [os.id, ...os.idLike]
  if (ids.includes('ubuntu')) return 'ubuntu'
  if (ids.includes('debian')) return 'debian'
  return 'unknown'
}

/**
 * The versions `apt-cache madison PACKAGE` offers ("pkg | version | source" lines).
 * @param {string} text
 */
export function parseMadison(text) {
  return [...new Set(text.split('\n').map((l) => l.split('|').map((f) => f.trim())[1]).filter((v) => !!v))]
}

/**
 * The apt packages the tests need on this machine.
 *
 * systemd-container is pinned to the installed systemd, so apt never upgrades the host's systemd
 * under a developer; when apt no longer offers that exact version (the archive moved on since a
 * runner image was built), both are installed at the same newer version instead.
 *
 * @param {{
 *   os: { id: string, idLike: string[], versionId: string, prettyName: string },
 *   env: Record<string, string | undefined>,
 *   exists: (file: string) => boolean,
 *   systemdVersion?: string,
 *   containerVersions?: string[],
 * }} facts `containerVersions`: what apt offers for systemd-container, undefined when not known
 * @returns {import('./packages.d.mts').PackagePlan}
 */
export function planPackages({ os, env, exists, systemdVersion, containerVersions }) {
  const distro = distroOf(os)
  const packages = [...BASE]
  const notes = [`distribution: ${os.prettyName} (${distro === 'unknown' ? 'neither Debian nor Ubuntu: Debian package names assumed' : `${distro} package names`})`]
  const problems = []

  if (!systemdVersion) {
    packages.push('systemd', 'systemd-container')
    notes.push('systemd: not installed; installing systemd and systemd-container')
  } else if (containerVersions && containerVersions.length > 0 && !containerVersions.includes(systemdVersion)) {
    packages.push('systemd', 'systemd-container')
    notes.push(`systemd-container ${systemdVersion} (the installed systemd) is no longer offered by apt (${containerVersions.join(', ')}): upgrading systemd and systemd-container together`)
  } else {
    packages.push(`systemd-container=${systemdVersion}`)
    notes.push(`systemd-container: pinned to the installed systemd ${systemdVersion}`)
  }

  const browser = findBrowser({ env, exists, distro })
  if (browser.error) problems.push({ error: browser.error, hint: browser.hint })
  else {
    if (browser.install) packages.push(...browser.install)
    // Debian's Chromium in use stays on the list, so dpkg is asked about it like any other.
    else if (distro === 'debian' && browser.path === DEBIAN_CHROMIUM) packages.push('chromium')
    notes.push(`browser: ${browser.source}: ${browser.path}`)
  }

  return { distro, packages, browser, notes, problems }
}

function output(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return ''
  }
}

function readOsRelease(file) {
  for (const f of file ? [file] : ['/etc/os-release', '/usr/lib/os-release']) {
    try {
      return readFileSync(f, 'utf8')
    } catch (err) {
      if (file) throw err
    }
  }
  return ''
}

/** This machine's facts, for `node .ci/packages.mjs`. */
export function machineFacts({ osReleaseFile } = {}) {
  const systemdVersion = output('dpkg-query', ['-W', '-f=${Version}', 'systemd']) || undefined
  const containerInstalled = output('dpkg-query', ['-W', '-f=${Status}', 'systemd-container']).endsWith('install ok installed')
  // Only asked when it matters; before `apt-get update` apt may know no version at all (undefined).
  const offered = containerInstalled ? [] : parseMadison(output('apt-cache', ['madison', 'systemd-container']))
  return {
    os: parseOsRelease(readOsRelease(osReleaseFile)),
    env: process.env,
    exists: isExecutable,
    systemdVersion,
    containerVersions: offered.length > 0 ? offered : undefined,
  }
}

function main() {
  const { values } = parseArgs({ options: { 'os-release': { type: 'string' } } })
  const plan = planPackages(machineFacts({ osReleaseFile: values['os-release'] }))
  for (const note of plan.notes) process.stderr.write(`  ${note}\n`)
  for (const p of plan.problems) process.stderr.write(`error: ${p.error}\n  ${p.hint}\n`)
  if (plan.problems.length > 0) process.exit(1)
  process.stdout.write(plan.packages.map((p) => `${p}\n`).join(''))
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main()
