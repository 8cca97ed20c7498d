// The pages of the web UI and their addresses. Upkeep's own Software Updates page stays where it
// always was (Settings → Software Updates); every other app has its page under /apps/<name>.

export const UPKEEP = 'upkeep'
export const OVERVIEW_PATH = '/'
export const APPS_PATH = '/apps'
export const UPKEEP_UPDATES_PATH = '/settings/updates'

export type Route = { page: 'overview' } | { page: 'apps' } | { page: 'updates'; app: string } | { page: 'not-found' }

/** The page a path shows; `/apps/upkeep` is Upkeep's page too (its canonical address is Settings → Software Updates). */
export function routeOf(pathname: string): Route {
  const path = pathname.length > 1 ? pathname.replace(/\/+$/, '') : pathname
  if (path === OVERVIEW_PATH || path === '') return { page: 'overview' }
  if (path === APPS_PATH) return { page: 'apps' }
  if (path === UPKEEP_UPDATES_PATH) return { page: 'updates', app: UPKEEP }
  const m = /^\/apps\/([^/]+)$/.exec(path)
  if (m) {
    let app: string
    try {
      app = decodeURIComponent(m[1]!)
    } catch {
      return { page: 'not-found' }
    }
    return { page: 'updates', app }
  }
  return { page: 'not-found' }
}

/** The address of an app's Software Updates page. */
export function updatesPathOf(app: string): string {
  return app === UPKEEP ? UPKEEP_UPDATES_PATH : `${APPS_PATH}/${encodeURIComponent(app)}`
}

/** The address a route is known by (for `history.replaceState` when another one led to it). */
export function pathOf(route: Route): string | undefined {
  if (route.page === 'overview') return OVERVIEW_PATH
  if (route.page === 'apps') return APPS_PATH
  if (route.page === 'updates') return updatesPathOf(route.app)
  return undefined
}

/** The key of a page: one keyed element per page, so nothing of the previous page stays in the DOM. */
export function pageKey(route: Route): string {
  return route.page === 'updates' ? `updates:${route.app}` : route.page
}
