import { constants } from 'node:fs'
import { open, readdir } from 'node:fs/promises'
import path from 'node:path'
import type { Config } from '../config'
import { UpdateError } from '../errors'
import { readDataFile } from '../data-file'
import { createAppPaths, createManagerPaths, UPKEEP_APP } from '../paths'
import { repoProblem } from '../repo'
import { upkeepDefinition, type UpkeepFacts } from './builtin'
import { APP_NAME_RE, parseAppDefinition, type AppDefinition } from './definition'

/** An app as the manager knows it: its definition, or why its file was refused. */
export type AppEntry = { name: string; file?: string; ok: true; def: AppDefinition } | { name: string; file: string; ok: false; error: UpdateError }

const MAX_DEFINITION_BYTES = 64 << 10

/**
 * Reads one definition file. A definition decides which units root restarts and which user a
 * build runs as, so when root reads it the file must be root's and writable by root alone.
 */
export async function readDefinitionFile(file: string, opts: { requireRootOwned: boolean }): Promise<AppDefinition> {
  let h
  try {
    h = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new UpdateError('NOT_FOUND', `no app definition at ${file}`, { hint: 'Add the app first: upkeep app add CHECKOUT' })
    throw new UpdateError('BAD_CONFIG', `cannot read ${file}: ${code === 'ELOOP' ? 'it is a symbolic link' : code}`)
  }
  try {
    const s = await h.stat()
    if (!s.isFile() || s.size > MAX_DEFINITION_BYTES) throw new UpdateError('BAD_CONFIG', `${file} is not a regular file of at most 64 KiB`)
    if (opts.requireRootOwned && (s.uid !== 0 || (s.mode & 0o022) !== 0)) {
      throw new UpdateError('BAD_CONFIG', `${file} must belong to root and be writable by root alone (it is uid ${s.uid}, mode ${(s.mode & 0o777).toString(8)})`, {
        hint: `chown root: ${file} && chmod 644 ${file}`,
      })
    }
    const text = await h.readFile('utf8')
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch (err) {
      throw new UpdateError('BAD_CONFIG', `${file} is not valid JSON: ${(err as Error).message}`)
    }
    const def = parseAppDefinition(value, file)
    const expected = path.basename(file, '.json')
    if (def.name !== expected) throw new UpdateError('BAD_CONFIG', `${file} defines "${def.name}"; the file must be named ${def.name}.json`)
    return def
  } finally {
    await h.close()
  }
}

/** Whether an allowed-signers file pins at least one key (its lines are checked where it is used). */
export async function hasPinnedKey(file: string): Promise<boolean> {
  try {
    const text = (await readDataFile(file, { maxBytes: 1 << 20 })) ?? ''
    return text.split('\n').some((l) => l.trim() !== '' && !l.trim().startsWith('#'))
  } catch {
    return false
  }
}

/** What Upkeep's definition needs beyond its environment: a pinned release key, the stored repository. */
export async function upkeepFacts(config: Config): Promise<UpkeepFacts> {
  const base = upkeepDefinition(config)
  const keyPinned = await hasPinnedKey(createAppPaths(base, createManagerPaths(config)).allowedSigners)
  let settingsRepo: string | undefined
  try {
    // The server's file: read like its other files, never through a link, and validated here.
    const stored = (JSON.parse((await readDataFile(path.join(config.dataDir, 'settings.json'), { maxBytes: 64 << 10 })) ?? '{}') as { updateRepo?: unknown }).updateRepo
    if (typeof stored === 'string' && !repoProblem(stored)) settingsRepo = stored
  } catch {
    /* no settings: no stored repository */
  }
  return { keyPinned, ...(settingsRepo ? { settingsRepo } : {}) }
}

export interface Registry {
  /** Upkeep itself first, then every app in the apps directory, sorted by name. */
  list(): Promise<AppEntry[]>
  /** One app's definition; throws NOT_FOUND or BAD_CONFIG with a hint. */
  get(name: string): Promise<AppDefinition>
}

/** The apps Upkeep manages: its own built-in definition and the files in `config.appsDir`. */
export function createRegistry(config: Config, opts: { requireRootOwned?: boolean } = {}): Registry {
  const requireRootOwned = opts.requireRootOwned ?? process.getuid?.() === 0
  const own = async () => upkeepDefinition(config, await upkeepFacts(config))
  const fileOf = (name: string) => path.join(config.appsDir, `${name}.json`)
  return {
    async list() {
      const entries: AppEntry[] = [{ name: UPKEEP_APP, ok: true, def: await own() }]
      let names: string[] = []
      try {
        names = (await readdir(config.appsDir)).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)).sort()
      } catch {
        return entries
      }
      for (const name of names) {
        if (!APP_NAME_RE.test(name) || name === UPKEEP_APP) continue
        const file = fileOf(name)
        try {
          entries.push({ name, file, ok: true, def: await readDefinitionFile(file, { requireRootOwned }) })
        } catch (err) {
          entries.push({ name, file, ok: false, error: err instanceof UpdateError ? err : new UpdateError('BAD_CONFIG', String(err)) })
        }
      }
      return entries
    },
    async get(name) {
      if (name === UPKEEP_APP) return own()
      if (!APP_NAME_RE.test(name)) throw new UpdateError('BAD_REQUEST', `"${name.slice(0, 40)}" is not an app name`, { hint: 'App names are a-z, 0-9 and "-": upkeep app list' })
      return readDefinitionFile(fileOf(name), { requireRootOwned })
    },
  }
}
