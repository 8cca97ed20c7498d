import { ConfigError, type Env } from './shared/config'

/** Knobs of the updater alone (the server never reads them). */
export interface Tunables {
  /** How long the health step waits for the target version. */
  healthTimeoutMs: number
  /** Backups kept in BACKUP_DIR (newest first). */
  backupKeep: number
  /** No journal progress for this long: the update is stale, marked failed, the lock released. */
  staleAfterMs: number
}

const SPEC = {
  UPKEEP_HEALTH_TIMEOUT: { key: 'healthTimeoutMs', unit: 1000, min: 1, fallback: 60, what: 'seconds' },
  UPKEEP_BACKUP_KEEP: { key: 'backupKeep', unit: 1, min: 1, fallback: 5, what: 'a number of backups' },
  UPKEEP_STALE_AFTER: { key: 'staleAfterMs', unit: 1000, min: 60, fallback: 1800, what: 'seconds' },
} as const

/** Pure, like parseConfig: empty values count as unset. */
export function parseTunables(env: Env): Tunables {
  const out: Record<string, number> = {}
  const problems: { variable: string; message: string }[] = []
  for (const [variable, s] of Object.entries(SPEC)) {
    const raw = env[variable]?.trim()
    if (!raw) {
      out[s.key] = s.fallback * s.unit
      continue
    }
    if (!/^\d+$/.test(raw) || Number(raw) < s.min) {
      problems.push({ variable, message: `must be ${s.what}, at least ${s.min}, got "${raw}"` })
      continue
    }
    out[s.key] = Number(raw) * s.unit
  }
  if (problems.length) throw new ConfigError(problems)
  return out as unknown as Tunables
}
