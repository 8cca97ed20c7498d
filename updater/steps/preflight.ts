import { access, constants, mkdir, rm, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { UpdateError } from '../shared/errors'
import { gitMessage } from '../adapters/git'
import { compareVersions, isNewer, isReleaseTag } from '../shared/version'
import { dirSize, foreignOwned, freeBytes } from '../adapters/fs'
import type { RunAs } from '../adapters/exec'
import { formatBytes } from '../backup-archive'
import type { Step, StepContext } from '../context'

/** Entries in a checkout that Upkeep itself creates: they never make it "unclean" or "foreign". */
export const MANAGED_ENTRIES = ['current', 'server.bak', '.upkeep', 'current.tmp', 'server.bak.tmp']

/** Upkeep's own data and backups sit in its checkout; node_modules is everyone's build output. */
const USUALLY_BUILT = ['node_modules', 'data', 'backups']

/** Top-level names in the checkout that are the app's data or backups (never the checkout's code). */
export function ownEntries(ctx: Pick<StepContext, 'paths'>): string[] {
  const inside = [...ctx.paths.dataPaths, ctx.paths.backupDir, ctx.paths.stateDir]
    .filter((p) => p.startsWith(ctx.paths.appDir + path.sep))
    .map((p) => path.relative(ctx.paths.appDir, p).split(path.sep)[0]!)
  return [...new Set([...MANAGED_ENTRIES, ...USUALLY_BUILT, ...inside])]
}

/** How to run `args` as the app's user from a root shell. */
export function asUserCommand(args: string, user: RunAs): string {
  return `sudo -u ${user.name} ${args}`
}

/** Refuses a checkout git cannot safely work in, with the command that fixes it. */
export async function verifyOwnership(ctx: Pick<StepContext, 'paths' | 'user'>, skip: string[]): Promise<void> {
  const { appDir } = ctx.paths
  const owner = (await stat(appDir)).uid
  if (ctx.user.uid === 0) {
    throw new UpdateError('FOREIGN_OWNER', `the checkout ${appDir} is owned by root; git and builds never run as root`, {
      step: 'preflight',
      hint: `Give it to an unprivileged user: useradd --system myapp && chown -R myapp: ${appDir}`,
    })
  }
  if (owner !== ctx.user.uid) {
    throw new UpdateError('FOREIGN_OWNER', `the checkout ${appDir} does not belong to ${ctx.user.name}, the user the app is updated as`, {
      step: 'preflight',
      hint: `chown -R ${ctx.user.name}: ${appDir} (or set "user" in the app definition to its owner)`,
    })
  }
  const foreign = await foreignOwned(appDir, ctx.user.uid, skip)
  if (foreign.length) {
    throw new UpdateError('FOREIGN_OWNER', `files in ${appDir} are not owned by ${ctx.user.name}: ${foreign.join(', ')}`, {
      step: 'preflight',
      hint: `Give them back (a \`sudo git pull\` or \`sudo npm install\` leaves files like these): chown -R ${ctx.user.name}: ${appDir}`,
    })
  }
}

/**
 * Refuses local edits git would mix with the release or lose. An app that runs from its checkout
 * (in-place) has untracked files by nature (its build output, its data); only tracked changes count.
 */
export async function verifyCleanWorktree(ctx: Pick<StepContext, 'git' | 'paths' | 'user' | 'app'>, skip: string[]): Promise<void> {
  const untracked = ctx.app.build.layout === 'releases'
  const changed = (await ctx.git.changedPaths({ untracked })).filter((p) => !skip.includes(p.replace(/\/$/, '').split('/')[0]!))
  if (changed.length) {
    const list = changed.slice(0, 5).join(', ') + (changed.length > 5 ? ` and ${changed.length - 5} more` : '')
    throw new UpdateError('DIRTY_WORKTREE', `the checkout has local changes: ${list}`, {
      step: 'preflight',
      hint: `Commit or stash them first: ${asUserCommand(`git -C ${ctx.paths.appDir} stash push${untracked ? ' --include-untracked' : ''}`, ctx.user)}`,
    })
  }
}

/** Free space for the backup (about the size of the data) and the build (twice the running release, 64 MiB at least). */
export async function verifyDiskSpace(ctx: StepContext): Promise<Record<string, number>> {
  const { paths } = ctx
  const facts: Record<string, number> = {}
  if (ctx.j.options.backup) {
    let data = 0
    for (const p of paths.dataPaths) data += await dirSize(p)
    const need = Math.ceil(data * 1.05) + (1 << 20)
    const free = await freeBytes(paths.backupDir)
    Object.assign(facts, { backupNeed: need, backupFree: free })
    if (free < need) {
      throw new UpdateError('DISK_FULL', `not enough space for the backup in ${paths.backupDir}: ${formatBytes(free)} free, about ${formatBytes(need)} needed`, {
        step: 'preflight',
        hint: `Free space there (old backups: ls -lt ${paths.backupDir}), or move the backups to a larger disk ("data.backupDir" in the app definition, BACKUP_DIR for Upkeep).`,
      })
    }
  }
  if (ctx.j.kind === 'update') {
    const need = Math.max(2 * (ctx.j.from.release ? await dirSize(ctx.j.from.release) : 0), 64 << 20)
    const free = await freeBytes(paths.stagingRoot)
    Object.assign(facts, { buildNeed: need, buildFree: free })
    if (free < need) {
      throw new UpdateError('DISK_FULL', `not enough space to build in ${paths.stagingRoot}: ${formatBytes(free)} free, about ${formatBytes(need)} needed`, {
        step: 'preflight',
        hint: `Free space on that disk (old builds live in ${paths.releases}).`,
      })
    }
  }
  return facts
}

async function verifyBackupDirWritable(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    await access(dir, constants.W_OK)
    const probe = path.join(dir, `.upkeep-probe-${process.pid}`)
    await writeFile(probe, '')
    await rm(probe)
  } catch (err) {
    throw new UpdateError('BACKUP_FAILED', `the backup directory ${dir} is not writable: ${(err as Error).message}`, {
      step: 'preflight',
      hint: "Create it writable for the app's user, or set another backup directory.",
      cause: err,
    })
  }
}

/** A data path must be a directory (or not exist yet: an app that never ran has none). */
async function verifyDataPaths(paths: string[]): Promise<void> {
  for (const p of paths) {
    const s = await stat(p).catch(() => undefined)
    if (s && !s.isDirectory()) {
      throw new UpdateError('BAD_CONFIG', `the data path ${p} is not a directory`, { step: 'preflight', hint: 'List the directory that holds the file in "data.paths".' })
    }
  }
}

// Checks everything that can be checked before anything changes: a refusal here changes nothing.
export const preflight: Step = {
  name: 'preflight',
  async run(ctx) {
    const { j, git, paths } = ctx
    const skip = ownEntries(ctx)
    await verifyOwnership(ctx, skip)
    await verifyCleanWorktree(ctx, skip)
    await verifyDataPaths(paths.dataPaths)
    if (j.kind === 'update') {
      if (!isReleaseTag(j.to.tag)) {
        throw new UpdateError('BAD_VERSION', `"${j.to.tag}" is not a release tag`, { step: 'preflight', hint: 'Tags look like v1.2.3 (or v1.2.3-rc.1).' })
      }
      let tags: Map<string, string>
      try {
        tags = await git.remoteTags()
      } catch (err) {
        throw new UpdateError('FETCH_FAILED', `cannot list the tags of the app's remote: ${gitMessage(err)}`, {
          step: 'preflight',
          hint: `Check the network and \`git -C ${paths.appDir} remote -v\`.`,
          cause: err,
        })
      }
      const commit = tags.get(j.to.tag)
      if (!commit) {
        const known = [...tags.keys()].filter(isReleaseTag).sort((a, b) => compareVersions(b, a)).slice(0, 5)
        throw new UpdateError('TAG_NOT_FOUND', `tag ${j.to.tag} is not on the remote`, {
          step: 'preflight',
          hint: known.length ? `Newest release tags: ${known.join(', ')}.` : 'The remote has no release tags (v1.2.3) yet.',
        })
      }
      j.to.commit = commit
      if (!j.options.force && !isNewer(j.to.version, j.from.version)) {
        throw new UpdateError('NOT_NEWER', `${j.to.tag} is not newer than the running version ${j.from.version}`, {
          step: 'preflight',
          hint: `To reinstall or downgrade on purpose: upkeep${ctx.app.name === 'upkeep' ? '' : ` --app ${ctx.app.name}`} update ${j.to.tag} --force`,
        })
      }
    }
    for (const dir of [paths.upkeepDir, paths.stagingRoot, paths.releases]) await mkdir(dir, { recursive: true })
    if (j.options.backup) await verifyBackupDirWritable(paths.backupDir)
    const disk = await verifyDiskSpace(ctx)
    await ctx.save()
    return { toCommit: j.to.commit, ...disk }
  },
}
