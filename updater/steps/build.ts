import { access, readFile, rename, rm } from 'node:fs/promises'
import path from 'node:path'
import { UpdateError } from '../shared/errors'
import { processStartTime } from '../shared/pidfile'
import { versionFromDescribe } from '../shared/version'
import { ExecError } from '../adapters/exec'
import { readLinkTarget } from '../adapters/fs'
import { readReleaseManifest, RELEASE_MANIFEST, writeReleaseManifest } from '../adapters/release-manifest'
import { expandCommand, parseAppConfig, type AppConfig } from '../app-config'
import type { Step, StepContext } from '../context'

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

async function readAppConfig(dir: string): Promise<AppConfig> {
  let text: string
  try {
    text = await readFile(path.join(dir, 'upkeep.json'), 'utf8')
  } catch {
    return parseAppConfig(undefined)
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new UpdateError('BAD_CONFIG', `upkeep.json of the release is not valid JSON: ${(err as Error).message}`, { step: 'build' })
  }
  return parseAppConfig(value)
}

// Build in staging so a failed build never touches the running release or the checkout.
export const build: Step = {
  name: 'build',
  async run(ctx) {
    const { j, paths, git } = ctx
    const staging = paths.staging(j.to.tag)
    const out = outDirFor(staging)
    await cleanStaging(ctx, j.to.tag)
    await git.worktreeAdd(staging, j.to.commit!)
    const app = await readAppConfig(staging)
    const outDir = app.outDir === '{out}' ? out : path.join(staging, app.outDir)

    const commands: { argv: string[]; durationMs: number }[] = []
    let logged = 0
    for (const raw of app.buildCommands) {
      const argv = expandCommand(raw, out)
      await ctx.emit({ type: 'log', level: 'info', step: 'build', message: `$ ${argv.join(' ')}` })
      const t0 = performance.now()
      try {
        await ctx.exec(argv[0]!, argv.slice(1), {
          cwd: staging,
          signal: ctx.signal,
          onSpawn: async (pid) => {
            j.child = { pid, start: processStartTime(pid), argv }
            await ctx.save()
          },
          onLine: (line) => {
            void ctx.touch()
            if (logged++ < MAX_LOG_LINES) void ctx.emit({ type: 'log', level: 'info', step: 'build', message: line })
          },
        })
      } catch (err) {
        if (err instanceof ExecError) {
          const output = err.tail.join('\n')
          if (/ENOSPC|No space left on device/.test(output)) {
            throw new UpdateError('DISK_FULL', `build failed: no space left on device while running ${raw.join(' ')}; output:\n${output}`, {
              step: 'build',
              hint: `Free space on the disk of ${paths.stagingRoot}; the running version was not touched.`,
            })
          }
          const shown = raw.join(' ')
          const how = err.code === undefined ? 'could not start' : err.signal ? `was killed by ${err.signal}` : `exited ${err.code}`
          throw new UpdateError('BUILD_FAILED', `build failed: ${shown} ${how}; output:\n${output}`, {
            step: 'build',
            hint: `The running version was not touched. Fix the release, or build it by hand to see more: git worktree add /tmp/b ${j.to.tag} && cd /tmp/b && ${expandCommand(raw, '/tmp/b-out').join(' ')}`,
          })
        }
        throw err
      } finally {
        delete j.child
      }
      commands.push({ argv, durationMs: Math.round(performance.now() - t0) })
    }
    await ctx.save()

    // A build that writes its own manifest (Upkeep's does) is described by it; others get one here.
    const built = await readReleaseManifest(outDir)
    if (built && built.commit !== j.to.commit) {
      throw new UpdateError('BUILD_FAILED', `the build's ${RELEASE_MANIFEST} names commit ${built.commit.slice(0, 12)}, not ${j.to.tag} (${j.to.commit!.slice(0, 12)})`, {
        step: 'build',
        hint: `The build must describe the commit it was run in (git rev-parse HEAD), or leave ${RELEASE_MANIFEST} to the updater.`,
      })
    }
    const serverEntry = built?.serverEntry ?? app.serverEntry
    try {
      await access(path.join(outDir, serverEntry))
    } catch {
      throw new UpdateError('BUILD_FAILED', `the build produced no ${serverEntry} in ${path.relative(paths.appDir, outDir)}`, {
        step: 'build',
        hint: 'Check "outDir" and "serverEntry" in upkeep.json, or the build script’s --out handling.',
      })
    }
    if (!built) {
      await writeReleaseManifest(outDir, {
        tag: j.to.tag,
        version: versionFromDescribe(j.to.tag),
        commit: j.to.commit!,
        serverEntry,
        healthPath: app.healthPath,
        builtAt: ctx.clock.now().toISOString(),
      })
    }
    const release = await releaseDirFor(ctx, j.to.tag)
    await rm(release, { recursive: true, force: true })
    await rename(outDir, release)
    j.to.release = release
    await ctx.save()
    await cleanStaging(ctx, j.to.tag)
    return { commands, release: path.relative(paths.appDir, release) }
  },
}
