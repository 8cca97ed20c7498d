import type { Child } from 'hono/jsx'
import { inPage } from '../lib/in-page-link'

export interface LayoutProps {
  path: string
  version: string | undefined
  banner: Child
  onNavigate: (path: string) => void
  onLogout: () => void
  children: Child
}

const NAV = [
  { path: '/', label: 'Overview' },
  { path: '/apps', label: 'Apps' },
  { path: '/settings/updates', label: 'Software Updates', section: 'Settings' },
]

/** The page itself, or (for the Apps entry) a page below it: one app's page. */
function current(item: string, path: string): 'page' | 'true' | undefined {
  if (item === path) return 'page'
  return item !== '/' && path.startsWith(item + '/') ? 'true' : undefined
}

/** Sidebar (banner, navigation, sign out) beside the page; a compact top bar on narrow screens. */
export function Layout({ path, version, banner, onNavigate, onLogout, children }: LayoutProps) {
  const link = (to: string) => inPage(() => onNavigate(to))
  return (
    <div class="shell">
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <aside class="sidebar">
        <a class="brand" href="/" onClick={link('/')}>
          <span class="brand-mark" aria-hidden="true">
            U
          </span>
          Upkeep
        </a>
        <div class="sidebar-banner">{banner}</div>
        <nav class="nav" aria-label="Main">
          {NAV.map((item) => (
            <>
              {item.section ? <div class="nav-heading">{item.section}</div> : null}
              <a href={item.path} aria-current={current(item.path, path)} onClick={link(item.path)}>
                {item.label}
              </a>
            </>
          ))}
        </nav>
        <div class="sidebar-foot">
          <span class="sidebar-version">{version ? `Version ${version}` : ''}</span>
          <button type="button" onClick={onLogout}>
            Sign out
          </button>
        </div>
      </aside>
      <main class="content" id="main" tabindex={-1}>
        {children}
      </main>
    </div>
  )
}
