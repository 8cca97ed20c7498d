/** What the health endpoint answers (the fields the updater reads). */
export interface HealthAnswer {
  status: number
  version?: string
}

/** GETs `pathname` on the server once; undefined when nothing answers (refused, reset, timeout). */
export type HealthProbe = (pathname: string, signal?: AbortSignal) => Promise<HealthAnswer | undefined>

export function createHealthProbe(host: string, port: number, timeoutMs = 2000): HealthProbe {
  const h = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host
  const base = `http://${h.includes(':') ? `[${h}]` : h}:${port}`
  return async (pathname, signal) => {
    try {
      const timeout = AbortSignal.timeout(timeoutMs)
      const res = await fetch(base + pathname, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout })
      let version: string | undefined
      try {
        const body = (await res.json()) as { version?: unknown }
        if (typeof body.version === 'string') version = body.version
      } catch {
        /* not JSON */
      }
      return { status: res.status, ...(version ? { version } : {}) }
    } catch {
      return undefined
    }
  }
}
