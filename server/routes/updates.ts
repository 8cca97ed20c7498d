import { Hono } from 'hono'
import type { UpdatesService } from '../services/updates'

export interface UpdatesRoutesDeps {
  updates: UpdatesService
}

/** `GET /` (status from the cache, refreshed when stale) and `POST /check` under /api/updates. */
export function updatesRoutes({ updates }: UpdatesRoutesDeps) {
  return new Hono()
    .get('/', async (c) => {
      c.header('Cache-Control', 'no-store')
      return c.json(await updates.status())
    })
    .post('/check', async (c) => {
      c.header('Cache-Control', 'no-store')
      return c.json(await updates.check())
    })
}
