import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, test } from 'vitest'
import { repoRoot } from './support/paths'

// Dependencies point one way (HOUSE-STYLE.md): web → types of server, server → updater/shared,
// updater → neither. The updater must keep working whatever the server's code does.

interface Import {
  specifier: string
  typeOnly: boolean
}

/** Every module specifier a source file imports or re-exports, statically or by literal import(). */
export function importsOf(source: string): Import[] {
  const found: Import[] = []
  const staticRe = /^\s*(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm
  for (const m of source.matchAll(staticRe)) found.push({ specifier: m[3]!, typeOnly: Boolean(m[2]) })
  for (const m of source.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) found.push({ specifier: m[1]!, typeOnly: false })
  return found
}

type Area = 'server' | 'web' | 'updater' | 'updater/shared' | 'other'

function areaOf(file: string): Area {
  const rel = path.relative(repoRoot, file).split(path.sep)
  if (rel[0] === 'updater') return rel[1] === 'shared' ? 'updater/shared' : 'updater'
  if (rel[0] === 'server' || rel[0] === 'web') return rel[0]
  return 'other'
}

/** Why importing `spec` from `file` breaks the rules, or undefined when it is allowed. */
export function violation(file: string, imp: Import): string | undefined {
  if (!imp.specifier.startsWith('.')) return undefined
  const from = areaOf(file)
  const to = areaOf(path.resolve(path.dirname(file), imp.specifier))
  if ((from === 'updater' || from === 'updater/shared') && (to === 'server' || to === 'web')) return `updater code imports ${to}/`
  if (from === 'updater/shared' && to === 'updater') return 'updater/shared imports the rest of the updater (server would pull it in)'
  if (from === 'server' && to === 'updater') return 'server imports updater code outside updater/shared'
  if (from === 'server' && to === 'web') return 'server imports web code'
  if (from === 'web' && to === 'server' && !imp.typeOnly) return 'web imports server code that is not a type'
  if (from === 'web' && to.startsWith('updater') && !imp.typeOnly) return 'web imports updater code that is not a type'
  return undefined
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile() && /\.(ts|tsx|mts|mjs|js)$/.test(d.name))
    .map((d) => path.join(d.parentPath, d.name))
}

describe('architecture', () => {
  test('the rules catch what they should (self-check)', () => {
    const at = (p: string) => path.join(repoRoot, p)
    expect(violation(at('updater/run.ts'), { specifier: '../server/app', typeOnly: false })).toMatch(/updater code imports server/)
    expect(violation(at('updater/shared/status.ts'), { specifier: '../../web/src/api', typeOnly: true })).toMatch(/imports web/)
    expect(violation(at('server/app.ts'), { specifier: '../updater/run', typeOnly: false })).toMatch(/outside updater\/shared/)
    expect(violation(at('server/app.ts'), { specifier: '../updater/shared/journal', typeOnly: false })).toBeUndefined()
    expect(violation(at('web/src/api.ts'), { specifier: '../../server/app', typeOnly: false })).toMatch(/not a type/)
    expect(violation(at('web/src/api.ts'), { specifier: '../../server/app', typeOnly: true })).toBeUndefined()
    expect(importsOf(`import type { AppType } from '../../server/app'\nimport { x } from "./y"\nexport * from './z'\nconst m = await import('../server/cli')`)).toEqual([
      { specifier: '../../server/app', typeOnly: true },
      { specifier: './y', typeOnly: false },
      { specifier: './z', typeOnly: false },
      { specifier: '../server/cli', typeOnly: false },
    ])
  })

  test('updater/ imports nothing from server/ or web/; server/ only updater/shared; web/ only types from server/', () => {
    const files = ['updater', 'server', 'web'].flatMap((d) => sourceFiles(path.join(repoRoot, d)))
    expect(files.length).toBeGreaterThan(5)
    const problems = files.flatMap((file) =>
      importsOf(readFileSync(file, 'utf8')).flatMap((imp) => {
        const why = violation(file, imp)
        return why ? [`${path.relative(repoRoot, file)}: ${imp.specifier}: ${why}`] : []
      }),
    )
    expect(problems).toEqual([])
  })

  test('the updater reaches server code only through updater/server-entries.ts, by declared entry points built apart', () => {
    const mentions = sourceFiles(path.join(repoRoot, 'updater'))
      .filter((file) => /['"`](\.\.\/)+server\//.test(readFileSync(file, 'utf8')))
      .map((file) => path.relative(repoRoot, file))
    expect(mentions).toEqual(['updater/server-entries.ts'])
    // Each entry it names is one esbuild builds as a bundle of its own (deploy/build.ts), never into upkeep.mjs.
    const build = readFileSync(path.join(repoRoot, 'deploy/build.ts'), 'utf8')
    for (const source of ['server/main.ts', 'server/cli.ts']) expect(build).toContain(`'${source}'`)
  })
})
