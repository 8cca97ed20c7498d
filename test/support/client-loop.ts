import http from 'node:http'

export interface LoopStats {
  requests: number
  ok: number
  non2xx: number
  refused: number
  reset: number
  otherErrors: number
  errors: string[]
  /** Longest time any one request took, in ms. */
  longestStallMs: number
  /** Distinct `startedAt` values seen in /api/health answers: one per server process. */
  servers: Set<string>
}

export interface ClientLoop {
  stats: LoopStats
  stop(): Promise<LoopStats>
}

/**
 * `workers` clients requesting `path` back to back until stopped; half reuse one keep-alive
 * connection each, half open a new connection per request. Counts every failure by kind.
 */
export function startClientLoop(port: number, opts: { workers?: number; path?: string; host?: string } = {}): ClientLoop {
  const workers = opts.workers ?? 20
  const target = opts.path ?? '/api/health'
  const stats: LoopStats = { requests: 0, ok: 0, non2xx: 0, refused: 0, reset: 0, otherErrors: 0, errors: [], longestStallMs: 0, servers: new Set() }
  let running = true

  const once = (agent: http.Agent | false) =>
    new Promise<void>((resolve) => {
      const t0 = performance.now()
      const done = () => {
        stats.longestStallMs = Math.max(stats.longestStallMs, performance.now() - t0)
        resolve()
      }
      stats.requests++
      const req = http.get({ host: opts.host ?? '127.0.0.1', port, path: target, agent, timeout: 30_000 }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => (body += d))
        res.on('end', () => {
          if (res.statusCode && res.statusCode >= 200 && res.statusCode < 300) {
            stats.ok++
            try {
              const startedAt = (JSON.parse(body) as { startedAt?: string }).startedAt
              if (startedAt) stats.servers.add(startedAt)
            } catch {
              /* not JSON: still a 2xx */
            }
          } else stats.non2xx++
          done()
        })
        res.on('error', (err: NodeJS.ErrnoException) => {
          record(err)
          done()
        })
      })
      req.on('timeout', () => req.destroy(new Error('timeout')))
      req.on('error', (err: NodeJS.ErrnoException) => {
        record(err)
        done()
      })
    })

  const record = (err: NodeJS.ErrnoException) => {
    if (err.code === 'ECONNREFUSED') stats.refused++
    else if (err.code === 'ECONNRESET' || err.message === 'socket hang up') stats.reset++
    else stats.otherErrors++
    if (stats.errors.length < 20) stats.errors.push(`${err.code ?? ''} ${err.message}`)
  }

  const loops = Array.from({ length: workers }, async (_, i) => {
    const agent = i % 2 === 0 ? new http.Agent({ keepAlive: true, maxSockets: 1 }) : false
    while (running) await once(agent)
    if (agent) agent.destroy()
  })

  return {
    stats,
    async stop() {
      running = false
      await Promise.all(loops)
      return stats
    },
  }
}
