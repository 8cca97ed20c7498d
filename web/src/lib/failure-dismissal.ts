// A failed update stays on the page (and in the banner) after reloads until it is dismissed;
// dismissing it is remembered per update, in this browser.

const KEY = 'upkeep.failure.dismissedUpdate'

type Storage = Pick<globalThis.Storage, 'getItem' | 'setItem'>

export function isFailureDismissed(updateId: string, storage: Storage = localStorage): boolean {
  try {
    return storage.getItem(KEY) === updateId
  } catch {
    return false // storage disabled: keep showing it
  }
}

export function dismissFailure(updateId: string, storage: Storage = localStorage): void {
  try {
    storage.setItem(KEY, updateId)
  } catch {
    /* storage disabled: it comes back on the next load */
  }
}
