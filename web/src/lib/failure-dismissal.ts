import { appMemory, type Storage } from './app-memory'

// A failed update stays on its app's page (and in the banner) after reloads until it is
// dismissed; dismissing it is remembered per app (its last dismissed update), in this browser.

const memory = appMemory('upkeep.failure.dismissed', 'upkeep.failure.dismissedUpdate')

export function isFailureDismissed(app: string, updateId: string, storage?: Storage): boolean {
  return memory.get(app, storage) === updateId
}

export function dismissFailure(app: string, updateId: string, storage?: Storage): void {
  memory.set(app, updateId, storage)
}
