import { existsSync } from 'node:fs'
import path from 'node:path'
import { Hono, type MiddlewareHandler } from 'hono'
import { serveStatic } from '@hono/node-server/serve-static'

/** Sets Cache-Control on what `inner` serves successfully. */
function withCache(cacheControl: string, inner: MiddlewareHandler): MiddlewareHandler {
  return async (c, next) => {
    const res = await inner(c, next)
    if (res instanceof Response && res.ok) res.headers.set('Cache-Control', cacheControl)
    return res
  }
}

/**
 * The built single-page app. Hashed files under /assets are cached for a year; index.html
 * never is, so a browser picks up a new release on the next load.
 */
export function webRoutes(webDir: string | undefined) {
  const app = new Hono()
  if (!webDir || !existsSync(path.join(webDir, 'index.html'))) {
    return app.get('/', (c) => c.text('The web UI is not built. Run `npm run build` (or `npm start`, which builds it).\n', 503))
  }
  app.use('/assets/*', withCache('public, max-age=31536000, immutable', serveStatic({ root: webDir })))
  app.use('/favicon.svg', withCache('public, max-age=86400', serveStatic({ root: webDir, path: 'favicon.svg' })))
  const index = withCache('no-cache', serveStatic({ root: webDir, path: 'index.html' }))
  // Client-side routes (/settings/updates, /login…) all load the app shell.
  app.get('*', (c, next) => (c.req.path.startsWith('/api/') || c.req.path.startsWith('/assets/') ? next() : index(c, next)))
  return app
}
