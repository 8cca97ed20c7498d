import { readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, test } from 'vitest'
import { parse } from 'yaml'
import { repoRoot } from './support/paths'

type Step = { run?: string; uses?: string; with?: Record<string, unknown> }
type Workflow = { on: Record<string, unknown>; permissions?: Record<string, string>; jobs: Record<string, { steps: Step[]; strategy?: { matrix: Record<string, unknown[]> } }> }

const load = (name: string): Workflow => parse(readFileSync(path.join(repoRoot, '.github/workflows', name), 'utf8'), { strict: true, uniqueKeys: true })
const runs = (wf: Workflow) => Object.values(wf.jobs).flatMap((j) => j.steps.map((s) => s.run ?? '')).join('\n')

describe('GitHub workflows', () => {
  test('ci.yml installs, typechecks and tests on Node 20, 22 and 24', () => {
    const wf = load('ci.yml')
    expect(Object.keys(wf.on)).toEqual(expect.arrayContaining(['push', 'pull_request']))
    expect(wf.jobs.test!.strategy!.matrix['node-version']).toEqual([20, 22, 24])
    expect(runs(wf)).toMatch(/npm ci[\s\S]*npm run typecheck[\s\S]*\.ci\/run/)
  })

  test('release.yml builds, packs and publishes tarball and SHA256SUMS on v* tags', () => {
    const wf = load('release.yml')
    expect(wf.on).toEqual({ push: { tags: ['v*'] } })
    expect(wf.permissions).toEqual({ contents: 'write' })
    const script = runs(wf)
    expect(script).toMatch(/\.ci\/run[\s\S]*npm run pack[\s\S]*sha256sum -c SHA256SUMS[\s\S]*gh release create/)
    expect(script).toContain('dist/upkeep-*.tar.gz dist/SHA256SUMS')
    expect(script).toContain('--notes-from-tag')
  })
})
