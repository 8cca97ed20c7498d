// One remembered value per app in localStorage (what was dismissed for which app), under one key
// as a JSON object. Upkeep's value may still sit under the key used before there were apps.

export type Storage = Pick<globalThis.Storage, 'getItem' | 'setItem'>

export interface AppMemory {
  get(app: string, storage?: Storage): string | undefined
  set(app: string, value: string, storage?: Storage): void
}

const UPKEEP = 'upkeep'

function read(storage: Storage, key: string): Record<string, string> {
  try {
    const parsed: unknown = JSON.parse(storage.getItem(key) ?? '{}')
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, string>) : {}
  } catch {
    return {}
  }
}

/** `key` holds `{app: value}`; `legacyKey` held Upkeep's value alone. A storage that throws remembers nothing. */
export function appMemory(key: string, legacyKey?: string): AppMemory {
  return {
    get(app, storage = localStorage) {
      try {
        const value = read(storage, key)[app]
        if (typeof value === 'string') return value
        return app === UPKEEP && legacyKey ? (storage.getItem(legacyKey) ?? undefined) : undefined
      } catch {
        return undefined
      }
    },
    set(app, value, storage = localStorage) {
      try {
        storage.setItem(key, JSON.stringify({ ...read(storage, key), [app]: value }))
      } catch {
        /* storage disabled: forgotten on the next load */
      }
    },
  }
}
