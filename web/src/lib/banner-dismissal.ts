// The update banner can be dismissed for one version: it stays hidden across reloads until a
// different (newer) latest version is published. Kept in localStorage, per browser.

const KEY = 'upkeep.banner.dismissedVersion'

type Storage = Pick<globalThis.Storage, 'getItem' | 'setItem'>

export function isBannerDismissed(latestVersion: string, storage: Storage = localStorage): boolean {
  try {
    return storage.getItem(KEY) === latestVersion
  } catch {
    return false // storage disabled: show the banner
  }
}

export function dismissBanner(latestVersion: string, storage: Storage = localStorage): void {
  try {
    storage.setItem(KEY, latestVersion)
  } catch {
    /* storage disabled: the banner comes back on the next load */
  }
}
