// Types of packages.mjs for the TypeScript that imports it (test/ci/packages.test.ts).
import type { BrowserChoice, Distro } from './browser.d.mts'

export interface OsRelease {
  id: string
  idLike: string[]
  versionId: string
  prettyName: string
}

export interface PlanFacts {
  os: OsRelease
  env: Record<string, string | undefined>
  exists: (file: string) => boolean
  /** The installed systemd's version, undefined when systemd is not installed. */
  systemdVersion?: string
  /** The versions of systemd-container apt offers; undefined when apt does not know yet. */
  containerVersions?: string[]
}

export interface PackagePlan {
  distro: Distro
  /** apt packages, `name` or `name=version`. */
  packages: string[]
  browser: BrowserChoice
  /** What was decided and why, for the log. */
  notes: string[]
  /** Reasons the tests cannot run here, each with what to do. */
  problems: { error: string; hint: string }[]
}

export function parseOsRelease(text: string): OsRelease
export function distroOf(os: Pick<OsRelease, 'id' | 'idLike'>): Distro
export function parseMadison(text: string): string[]
export function planPackages(facts: PlanFacts): PackagePlan
export function machineFacts(opts?: { osReleaseFile?: string }): PlanFacts
