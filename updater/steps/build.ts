import { access, readdir, readFile, rename, rm } from 'node:fs/promises'
import path from 'node:path'
import { hasPinnedKey } from '../shared/apps/registry'
import { isUpdateError, UpdateError } from '../shared/errors'
import type { InstalledFrom } from '../shared/installed-from'
import { processStartTime } from '../shared/pidfile'
import { versionFromDescribe } from '../shared/version'
import { ExecError } from '../adapters/exec'
import { readLinkTarget } from '../adapters/fs'
import { readReleaseManifest, writeReleaseManifest } from '../adapters/release-manifest'
import { expandCommand, parseRepoBuildConfig, planBuild, type RepoBuildConfig } from '../app-config'
import { verifySignedTag } from '../artifacts/signed-tags'
import type { Step, StepContext } from '../context'
import { provideDependencies, type DependencyOutcome } from './dependencies'
import { installArtifact, verifyPinnedKeys } from './install-artifact'
import { ownEntries } from './preflight'

/** Build output lines sent to the live log before the rest is only counted. */
const MAX_LOG_LINES = 2000

export function outDirFor(staging: string): string {
  return `${staging}.out`
}

/** A release directory that is neither live nor the rollback build (a forced reinstall gets a new one). */
export async function releaseDirFor(ctx: Pick<StepContext, 'paths' | 'j'>, tag: string): Promise<string> {
  const inUse = new Set([await readLinkTarget(ctx.paths.current), await readLinkTarget(ctx.paths.serverBak)])
  const base = ctx.paths.release(tag)
  if (!inUse.has(base)) return base
  return `${base}+${ctx.j.updateId.slice(-8)}`
}

/** Removes what a build of `tag` left in staging (worktree, output), for a failed or interrupted update. */
export async function cleanStaging(ctx: Pick<StepContext, 'paths' | 'git'>, tag: string): Promise<void> {
  const staging = ctx.paths.staging(tag)
  await ctx.git.worktreeRemove(staging).catch(() => {})
  await rm(staging, { recursive: true, force: true })
  await rm(outDirFor(staging), { recursive: true, force: true })
}

async function readRepoConfig(dir: string): Promise<RepoBuildConfig> {
  let text: string
  try {
    text = await readFile(path.join(dir, 'upkeep.json'), 'utf8')
  } catch {
    return parseRepoBuildConfig(undefined)
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new UpdateError('BAD_CONFIG', `upkeep.json of the release is not valid JSON: ${(err as Error).message}`, { step: 'build' })
  }
  return parseRepoBuildConfig(value)
}

async function runBuildCommand(ctx: StepContext, raw: string[], argv: string[], staging: string, logged: { n: number }): Promise<void> {
  const { j, paths } = ctx
  try {
    await ctx.exec(argv[0]!, argv.slice(1), {
      cwd: staging,
      signal: ctx.signal,
      timeoutMs: ctx.app.build.timeoutMs,
      onSpawn: async (pid) => {
        j.child = { pid, start: processStartTime(pid), argv }
        await ctx.save()
      },
      onLine: (line) => {
        void ctx.touch()
        if (logged.n++ < MAX_LOG_LINES) void ctx.emit({ type: 'log', level: 'info', step: 'build', message: line })
      },
    })
  } catch (err) {
    if (!(err instanceof ExecError)) throw err
    const output = err.tail.join('\n')
    if (/ENOSPC|No space left on device/.test(output)) {
      throw new UpdateError('DISK_FULL', `build failed: no space left on device while running ${raw.join(' ')}; output:\n${output}`, {
        step: 'build',
        hint: `Free space on the disk of ${paths.stagingRoot}; the running version was not touched.`,
      })
    }
    const how = err.timedOut
      ? `did not finish within ${Math.round(ctx.app.build.timeoutMs / 1000)} s`
      : err.code === undefined
        ? 'could not start'
        : err.signal
          ? `was killed by ${err.signal}`
          : `exited ${err.code}`
    throw new UpdateError('BUILD_FAILED', `build failed: ${raw.join(' ')} ${how}; output:\n${output}`, {
      step: 'build',
      hint:
        err.code === undefined && !err.timedOut
          ? `Is ${argv[0]} installed and on the PATH the updater gives builds? The running version was not touched.`
          : `The running version was not touched. Fix the release, or build it by hand to see more: git worktree add /tmp/b ${j.to.tag} && cd /tmp/b && ${expandCommand(raw, '/tmp/b-out').join(' ')}`,
    })
  } finally {
    delete j.child
  }
}

/** Copies the definition's seed entries of the running build into staging (`cp -a`, a reflink where the filesystem has them). */
async function seed(ctx: StepContext, staging: string): Promise<string[]> {
  const from = ctx.app.build.layout === 'in-place' ? ctx.paths.appDir : ctx.j.from.release
  const seeded: string[] = []
  for (const name of from ? ctx.app.build.seed : []) {
    const source = path.join(from!, name)
    if (!(await access(source).then(() => true, () => false))) continue
    await ctx.exec('cp', ['-a', '--reflink=auto', source, path.join(staging, name)], { cwd: staging, signal: ctx.signal })
    seeded.push(name)
    await ctx.emit({ type: 'log', level: 'info', step: 'build', message: `copied ${name} of the running build into staging` })
  }
  return seeded
}

type TagSignature = Extract<InstalledFrom, { kind: 'source' }>['tag']

/**
 * Who signed the tag about to be built. With `requireSignedTags`, anything but a tag signed by a
 * pinned key is refused here, before a worktree or a build command exists. Without it, a tag is
 * still named signed when it verifies against pinned keys, and unsigned otherwise.
 */
async function tagSignature(ctx: StepContext): Promise<TagSignature> {
  const { j, paths } = ctx
  const required = ctx.app.requireSignedTags === true
  if (!required && !(await hasPinnedKey(paths.allowedSigners))) return { signed: false }
  try {
    if (required) await verifyPinnedKeys(ctx)
    const signed = await verifySignedTag(ctx.artifacts.run, { repoDir: paths.appDir, tag: j.to.tag, allowedSignersFile: paths.allowedSigners })
    if (signed.commit !== j.to.commit) {
      throw new UpdateError('TAG_MOVED', `the signed tag ${j.to.tag} points to ${signed.commit.slice(0, 12)}, not to ${j.to.commit!.slice(0, 12)} as when the update started`, {
        step: 'build',
        hint: 'A release tag must never move; start the update again to take the tag as it is now.',
      })
    }
    await ctx.emit({ type: 'log', level: 'info', step: 'build', message: `tag ${j.to.tag} is signed by ${signed.principal} (${signed.fingerprint})` })
    return { signed: true, signer: signed.principal, fingerprint: signed.fingerprint }
  } catch (err) {
    if (required || !isUpdateError(err)) throw err
    return { signed: false }
  }
}

async function runCommands(ctx: StepContext, list: string[][], out: string, staging: string, logged: { n: number }, commands: { argv: string[]; durationMs: number }[]): Promise<void> {
  for (const raw of list) {
    const argv = expandCommand(raw, out)
    await ctx.emit({ type: 'log', level: 'info', step: 'build', message: `$ ${argv.join(' ')}` })
    const t0 = performance.now()
    await runBuildCommand(ctx, raw, argv, staging, logged)
    commands.push({ argv, durationMs: Math.round(performance.now() - t0) })
  }
}

// Build in staging so a failed build never touches the running release or the checkout. An app
// that publishes signed artifacts gets its release installed from them instead (issue 13).
export const build: Step = {
  name: 'build',
  async run(ctx) {
    const { j } = ctx
    await cleanStaging(ctx, j.to.tag)
    if (ctx.app.artifacts && !j.options.fromSource && ctx.app.build.layout === 'releases') {
      return installArtifact(ctx, ctx.app.artifacts, () => releaseDirFor(ctx, j.to.tag))
    }
    return buildFromSource(ctx)
  },
}

async function buildFromSource(ctx: StepContext): Promise<Record<string, unknown>> {
  const { j, paths, git } = ctx
  const staging = paths.staging(j.to.tag)
  const out = outDirFor(staging)
  const tag = await tagSignature(ctx)
  await git.worktreeAdd(staging, j.to.commit!)
  const plan = planBuild(ctx.app, await readRepoConfig(staging))
  const seeded = await seed(ctx, staging)

  const commands: { argv: string[]; durationMs: number }[] = []
  const logged = { n: 0 }
  let dependencies: DependencyOutcome | undefined
  const install = plan.install
  if (install && ctx.app.dependencies) {
    dependencies = await provideDependencies(ctx, ctx.app.dependencies, staging, () => runCommands(ctx, [install], out, staging, logged, commands))
  }
  await runCommands(ctx, plan.commands, out, staging, logged, commands)
  j.to.installedFrom = { kind: 'source', tag, ...(dependencies ? { dependencies: dependencies.how } : {}) }
  await ctx.save()
  const facts = { commands, seeded, tag, ...(dependencies ? { dependencies } : {}) }

  if (ctx.app.build.layout === 'in-place') {
    // What the build made beside the tracked files is what the switch moves into the checkout.
    const own = new Set(ownEntries(ctx).filter((n) => n !== 'node_modules'))
    j.to.staging = staging
    j.to.outputs = (await git.untrackedTopLevel(staging)).filter((n) => !own.has(n))
    await ctx.save()
    return { ...facts, outputs: j.to.outputs }
  }

  const whole = plan.output === '.'
  const outDir = plan.output === '{out}' ? out : whole ? staging : path.join(staging, plan.output)
  if (!(await readdir(outDir).then((names) => names.length > 0, () => false))) {
    throw new UpdateError('BUILD_FAILED', `the build produced nothing in ${plan.output === '{out}' ? 'its output directory ({out})' : plan.output}`, {
      step: 'build',
      hint: 'Check "build.output" in the app definition (or "outDir" in upkeep.json), and that the build writes there.',
    })
  }
  if (plan.serverEntry) {
    try {
      await access(path.join(outDir, plan.serverEntry))
    } catch {
      throw new UpdateError('BUILD_FAILED', `the build produced no ${plan.serverEntry} in ${path.relative(paths.appDir, outDir)}`, {
        step: 'build',
        hint: 'Check "outDir" and "serverEntry" in upkeep.json, or the build script’s --out handling.',
      })
    }
  }
  // A build that describes itself (Upkeep's own does) keeps its manifest; the updater adds how it was installed.
  const own = await readReleaseManifest(outDir)
  if (own && own.commit !== j.to.commit) {
    throw new UpdateError('BUILD_FAILED', `the build's upkeep-release.json names commit ${own.commit.slice(0, 12)}, not ${j.to.tag} (${j.to.commit!.slice(0, 12)})`, {
      step: 'build',
      hint: 'The build must describe the commit it built: check how it finds its version and commit (git describe in the staging checkout).',
    })
  }
  await writeReleaseManifest(
    outDir,
    own
      ? { ...own, installedFrom: j.to.installedFrom }
      : {
          tag: j.to.tag,
          version: versionFromDescribe(j.to.tag),
          commit: j.to.commit!,
          serverEntry: plan.serverEntry ?? '',
          ...(plan.healthPath ? { healthPath: plan.healthPath } : {}),
          builtAt: ctx.clock.now().toISOString(),
          installedFrom: j.to.installedFrom,
        },
  )
  const release = await releaseDirFor(ctx, j.to.tag)
  await rm(release, { recursive: true, force: true })
  await rename(outDir, release)
  // The whole checkout as the release: it is no worktree any more (git forgets it below).
  if (whole) await rm(path.join(release, '.git'), { force: true })
  j.to.release = release
  await ctx.save()
  await cleanStaging(ctx, j.to.tag)
  return { ...facts, release: path.relative(paths.appDir, release) }
}
