import type { HealthDefinition, VersionProbe } from '../shared/apps/definition'

/** One answer of the health endpoint, as the health step judges it. */
export interface HealthAnswer {
  status: number
  /** The version the answer reports, when the definition says where to find it and it is there. */
  version?: string
  /** Why no version was found (`version` unset though the definition asks for one). */
  versionProblem?: string
}

/** Asks the app's health endpoint once; undefined when nothing answers (refused, reset, timeout). */
export type HealthProbe = (signal?: AbortSignal, pathname?: string) => Promise<HealthAnswer | undefined>

const MAX_BODY = 64 << 10

/** RFC 6901 lookup; undefined when the pointer leads nowhere. Pure. */
export function resolvePointer(doc: unknown, pointer: string): unknown {
  if (pointer === '') return doc
  let at: unknown = doc
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~')
    if (Array.isArray(at) && /^(0|[1-9]\d*)$/.test(key)) at = at[Number(key)]
    else if (at && typeof at === 'object' && Object.hasOwn(at, key)) at = (at as Record<string, unknown>)[key]
    else return undefined
  }
  return at
}

function shown(body: string): string {
  const s = body.replace(/\s+/g, ' ').trim()
  return s.length > 120 ? `${s.slice(0, 120)}…` : s || '(empty)'
}

/** Finds the version an answer reports, or says why there is none. Pure. */
export function extractVersion(probe: VersionProbe, answer: { headers: Headers; body: string }): { version?: string; problem?: string } {
  switch (probe.kind) {
    case 'none':
      return {}
    case 'header': {
      const v = answer.headers.get(probe.name)?.trim()
      return v ? { version: v } : { problem: `it has no ${probe.name} header` }
    }
    case 'regex': {
      const m = new RegExp(probe.pattern).exec(answer.body)
      const v = m ? (m[1] ?? m[0]).trim() : undefined
      return v ? { version: v } : { problem: `its body does not match /${probe.pattern}/ (body: ${shown(answer.body)})` }
    }
    case 'json-pointer': {
      let doc: unknown
      try {
        doc = JSON.parse(answer.body)
      } catch {
        return { problem: `its body is not JSON (body: ${shown(answer.body)})` }
      }
      const v = resolvePointer(doc, probe.pointer)
      if (typeof v === 'string' && v.trim()) return { version: v.trim() }
      if (typeof v === 'number') return { version: String(v) }
      return { problem: `its body has no version at JSON pointer ${probe.pointer || '""'} (body: ${shown(answer.body)})` }
    }
  }
}

/** The real probe: GET the definition's URL (no redirects followed, a short timeout per request). */
export function createHealthProbe(health: Pick<HealthDefinition, 'url' | 'version'>, timeoutMs = 2000): HealthProbe {
  return async (signal, pathname) => {
    const url = new URL(health.url)
    if (pathname) url.pathname = pathname
    try {
      const timeout = AbortSignal.timeout(timeoutMs)
      const res = await fetch(url, { redirect: 'manual', signal: signal ? AbortSignal.any([signal, timeout]) : timeout })
      const body = await readLimited(res)
      const found = extractVersion(health.version, { headers: res.headers, body })
      return { status: res.status, ...(found.version ? { version: found.version } : {}), ...(found.problem ? { versionProblem: found.problem } : {}) }
    } catch {
      return undefined
    }
  }
}

async function readLimited(res: Response): Promise<string> {
  if (!res.body) return ''
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    chunks.push(value)
    size += value.length
    if (size >= MAX_BODY) {
      await reader.cancel()
      break
    }
  }
  return Buffer.concat(chunks).toString('utf8', 0, Math.min(size, MAX_BODY))
}
