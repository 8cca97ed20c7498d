import type { Config } from '../config'
import { UPKEEP_APP } from '../paths'
import type { AppDefinition, ArtifactsDefinition, DependenciesDefinition } from './definition'

/**
 * Upkeep's data dir holds the manager's bookkeeping beside its own data: none of it is data to
 * back up or restore (a restore must not roll the journal or history back).
 */
export const UPKEEP_RUNTIME_EXCLUDES = [
  'update-journal.json',
  'update-status.jsonl',
  'update-history.jsonl',
  'update-request.json',
  'update-installed.json',
  'update.lock/',
  'update.lock.owner.json',
  'release-cache.json',
  'server.pid',
  'logs/',
  '.rolled-back/',
  'requests/',
  'apps/',
  'state/',
  // The server's notification bookkeeping: what was announced and what waits to be delivered.
  'notify-outbox.json',
  'notify-announced.json',
  'notify-cursors/',
]

/** Where the server answers, seen from this machine (a wildcard address is probed on loopback). */
export function localUrl(host: string, port: number, pathname: string): string {
  const h = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host
  return `http://${h.includes(':') ? `[${h}]` : h}:${port}${pathname}`
}

/** Upkeep's own dependency install, apart from its build so an unchanged lockfile reuses it. */
export const UPKEEP_DEPENDENCIES: DependenciesDefinition = {
  lockfiles: ['package-lock.json'],
  dirs: ['node_modules'],
  install: ['npm', 'ci', '--no-audit', '--no-fund'],
}

/** What Upkeep's own definition depends on beyond its environment (registry.ts reads them). */
export interface UpkeepFacts {
  /** A release key is pinned (`upkeep.allowed_signers`): without one, no artifact can be verified. */
  keyPinned?: boolean
  /** The repository stored in Settings (UPDATE_REPO wins over it). */
  settingsRepo?: string
}

/**
 * Upkeep's prebuilt releases: UPKEEP_ARTIFACTS_URL, else the GitHub Releases of UPDATE_REPO (or the
 * stored setting), once a release key is pinned. Otherwise Upkeep builds from source as before.
 */
export function upkeepArtifacts(config: Config, facts: UpkeepFacts): ArtifactsDefinition | undefined {
  if (!facts.keyPinned) return undefined
  const none = { maxDownloadBytes: undefined, maxUnpackedBytes: undefined, token: undefined }
  if (config.artifactsUrl) return { source: { kind: 'url', pattern: config.artifactsUrl }, ...none }
  const repo = config.updateRepo ?? facts.settingsRepo
  return repo ? { source: { kind: 'github', repo }, ...none } : undefined
}

/**
 * Upkeep is one app among them: this is its definition, built from its environment. It keeps
 * every guarantee of the self-update (its socket stays open across restarts, health must report
 * the new version); the build comes from the release's own upkeep.json, or a verified artifact.
 */
export function upkeepDefinition(config: Config, facts: UpkeepFacts = {}): AppDefinition {
  const artifacts = upkeepArtifacts(config, facts)
  return {
    schema: 1,
    name: UPKEEP_APP,
    checkout: config.appDir,
    user: undefined,
    // Listed by the server (UPDATE_REPO → setting → origin); the code always comes from origin.
    source: config.updateRepo ? { kind: 'github', repo: config.updateRepo } : { kind: 'git', remote: 'origin' },
    build: { commands: undefined, layout: 'releases', output: '{out}', env: {}, timeoutMs: 30 * 60_000, seed: [] },
    run: {
      units: ['upkeep.service'],
      sockets: ['upkeep.socket'],
      command: { argv: [process.execPath, '{serverEntry}'], env: {}, cwd: undefined },
    },
    health: {
      url: localUrl(config.host, config.port, '/api/health'),
      expectStatus: 200,
      version: { kind: 'json-pointer', pointer: '/version' },
      timeoutMs: config.healthTimeoutMs,
      intervalMs: 200,
      soakMs: config.soakMs,
    },
    data: { paths: [config.dataDir], exclude: UPKEEP_RUNTIME_EXCLUDES, keep: config.backupKeep, backupDir: config.backupDir },
    ...(artifacts ? { artifacts } : {}),
    requireSignedTags: false,
    dependencies: UPKEEP_DEPENDENCIES,
  }
}
