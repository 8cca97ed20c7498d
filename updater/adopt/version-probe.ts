import { versionFromDescribe } from '../shared/version'
import type { VersionJson } from './options'

// Where an app's health answer reports its version, found by looking for the version that runs
// now: a JSON field holding it, else a header. Nothing found means nothing is guessed.

/** One answer of the health URL, as `upkeep app add` saw it. */
export interface HealthSample {
  status: number
  headers: Headers
  body: string
}

const MAX_BODY = 64 << 10

/** GET `url` once (no redirects); undefined when nothing answers within `timeoutMs`. */
export async function sampleHealth(url: string, timeoutMs = 3000): Promise<HealthSample | undefined> {
  try {
    const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) })
    const body = (await res.text()).slice(0, MAX_BODY)
    return { status: res.status, headers: res.headers, body }
  } catch {
    return undefined
  }
}

function escapePointer(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1')
}

/** JSON pointers of the leaves of `doc` that hold `version` (with or without a leading "v"), shortest first. Pure. */
export function pointersTo(doc: unknown, version: string): string[] {
  const want = versionFromDescribe(version)
  const found: string[] = []
  const walk = (v: unknown, at: string, depth: number) => {
    if ((typeof v === 'string' || typeof v === 'number') && versionFromDescribe(String(v).trim()) === want) found.push(at)
    else if (depth < 6 && v && typeof v === 'object') {
      for (const [k, child] of Array.isArray(v) ? v.map((c, i) => [String(i), c] as const) : Object.entries(v)) walk(child, `${at}/${escapePointer(k)}`, depth + 1)
    }
  }
  walk(doc, '', 0)
  // A key named like a version wins over one that merely happens to hold the same text.
  const named = (p: string) => (/version[^/]*$/i.test(p) ? 0 : 1)
  return found.sort((a, b) => named(a) - named(b) || a.split('/').length - b.split('/').length || a.localeCompare(b))
}

/**
 * How the health answer reports `version`, the version running now: a JSON pointer, else a
 * header; undefined when the answer does not show it. Pure.
 */
export function findVersionProbe(sample: Pick<HealthSample, 'headers' | 'body'>, version: string): VersionJson | undefined {
  try {
    const pointer = pointersTo(JSON.parse(sample.body), version)[0]
    if (pointer !== undefined) return { jsonPointer: pointer }
  } catch {
    /* not JSON */
  }
  const want = versionFromDescribe(version)
  for (const [name, value] of sample.headers) if (versionFromDescribe(value.trim()) === want) return { header: name.toLowerCase() }
  return undefined
}
