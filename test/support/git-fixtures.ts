import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { cp, mkdir, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { repoRoot } from './paths'

/** Git's environment in tests: a fixed identity, and no system or user config of this machine. */
export const GIT_ENV = {
  GIT_AUTHOR_NAME: 'Upkeep Test',
  GIT_AUTHOR_EMAIL: 'test@upkeep.invalid',
  GIT_COMMITTER_NAME: 'Upkeep Test',
  GIT_COMMITTER_EMAIL: 'test@upkeep.invalid',
  GIT_CONFIG_NOSYSTEM: '1',
  // The test (root) works in repositories owned by other users; git honours safe.directory only in
  // global (or system) config, so the test's git gets a global config of its own.
  GIT_CONFIG_GLOBAL: path.join(tmpdir(), 'upkeep-test-gitconfig'),
}
writeFileSync(GIT_ENV.GIT_CONFIG_GLOBAL, '[safe]\n\tdirectory = *\n')

/** Runs git in `cwd` with a fixed identity; returns trimmed stdout, throws with stderr on failure. */
export function git(cwd: string, args: string[]): string {
  return execFileSync('git', ['-c', 'init.defaultBranch=main', '-c', 'advice.detachedHead=false', ...args], {
    cwd,
    env: { ...process.env, ...GIT_ENV },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim()
}

/** The project's files as a checkout has them: tracked plus new files not ignored. */
export function projectFiles(): string[] {
  return git(repoRoot, ['ls-files', '--cached', '--others', '--exclude-standard', '-z'])
    .split('\0')
    .filter(Boolean)
}

/**
 * Copies the project's current sources into `dir` (without node_modules, which is linked
 * instead when `linkNodeModules`), so a test can make commits and tags of its own.
 */
export async function copyProject(dir: string, opts: { linkNodeModules?: boolean } = {}): Promise<void> {
  await mkdir(dir, { recursive: true })
  for (const file of projectFiles()) {
    const from = path.join(repoRoot, file)
    const to = path.join(dir, file)
    await mkdir(path.dirname(to), { recursive: true })
    await cp(from, to, { preserveTimestamps: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err // deleted in the working tree but not yet in the index
    })
  }
  if (opts.linkNodeModules) await symlink(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'))
}

/** `git init` + one commit of everything in `dir`. */
export function commitAll(dir: string, message: string): string {
  if (!git(dir, ['rev-parse', '--is-inside-work-tree']).includes('true')) throw new Error(`${dir} is not a repo`)
  git(dir, ['add', '-A'])
  git(dir, ['commit', '-q', '--allow-empty', '-m', message])
  return git(dir, ['rev-parse', 'HEAD'])
}

export function initRepo(dir: string): void {
  git(dir, ['init', '-q'])
}
