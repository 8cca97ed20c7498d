import { appMemory, type Storage } from './app-memory'

// The update banner can be dismissed for one version of one app: it stays hidden across reloads
// until a different (newer) latest version of that app is published. Kept in localStorage, per browser.

const memory = appMemory('upkeep.banner.dismissed', 'upkeep.banner.dismissedVersion')

export function isBannerDismissed(app: string, latestVersion: string, storage?: Storage): boolean {
  return memory.get(app, storage) === latestVersion
}

export function dismissBanner(app: string, latestVersion: string, storage?: Storage): void {
  memory.set(app, latestVersion, storage)
}
