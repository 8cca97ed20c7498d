import { Hono } from 'hono'
import type { BuildInfo } from '../../updater/shared/version'

export interface HealthDeps {
  build: BuildInfo
  startedAt: Date
}

/** What the updater and the UI poll: answers as soon as the server accepts requests. */
export function healthRoutes({ build, startedAt }: HealthDeps) {
  return new Hono().get('/', (c) => {
    c.header('Cache-Control', 'no-store')
    return c.json({ status: 'ok' as const, version: build.version, commit: build.commit, startedAt: startedAt.toISOString() })
  })
}
