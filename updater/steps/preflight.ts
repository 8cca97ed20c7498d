import { access, chown, constants, mkdir, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { UpdateError } from '../shared/errors'
import { gitMessage } from '../adapters/git'
import { compareVersions, isNewer, isReleaseTag } from '../shared/version'
import { dirSize, foreignOwned, freeBytes, isRoot, mkdirOwned } from '../adapters/fs'
import type { RunAs } from '../adapters/exec'
import { formatBytes } from '../backup-archive'
import type { Step, StepContext } from '../context'

/** Entries in the checkout that Upkeep itself creates: they never make it "unclean" or "foreign". */
export const MANAGED_ENTRIES = ['current', 'server.bak', '.upkeep', 'data', 'backups', 'node_modules', 'current.tmp', 'server.bak.tmp']

/** The command that runs `args` as the checkout's owner from a root shell (or as is). */
export function asOwnerCommand(args: string, owner: RunAs | undefined): string {
  return owner && owner.uid !== process.getuid?.() ? `sudo -u ${owner.name} ${args}` : args
}

/** Refuses a checkout git cannot safely work in, with the command that fixes it. */
export async function verifyOwnership(appDir: string, owner: RunAs): Promise<void> {
  if (isRoot() && owner.uid === 0) {
    throw new UpdateError('FOREIGN_OWNER', `the checkout ${appDir} is owned by root; git and npm never run as root`, {
      step: 'preflight',
      hint: `Give it to an unprivileged user: useradd --system --home-dir ${appDir} upkeep && chown -R upkeep: ${appDir}`,
    })
  }
  if (!isRoot() && owner.uid !== process.getuid?.()) {
    throw new UpdateError('FOREIGN_OWNER', `the checkout ${appDir} belongs to ${owner.name}, not to the user running the updater`, {
      step: 'preflight',
      hint: `Run the updater as ${owner.name} or as root: sudo upkeep update`,
    })
  }
  const foreign = await foreignOwned(appDir, owner.uid, MANAGED_ENTRIES)
  if (foreign.length) {
    throw new UpdateError('FOREIGN_OWNER', `files in ${appDir} are not owned by ${owner.name}: ${foreign.join(', ')}`, {
      step: 'preflight',
      hint: `Give them back (a \`sudo git pull\` leaves files like these): chown -R ${owner.name}: ${appDir}`,
    })
  }
}

export async function verifyCleanWorktree(ctx: Pick<StepContext, 'git' | 'paths' | 'owner'>): Promise<void> {
  const changed = (await ctx.git.changedPaths()).filter((p) => !MANAGED_ENTRIES.includes(p.replace(/\/$/, '').split('/')[0]!))
  if (changed.length) {
    const list = changed.slice(0, 5).join(', ') + (changed.length > 5 ? ` and ${changed.length - 5} more` : '')
    throw new UpdateError('DIRTY_WORKTREE', `the checkout has local changes: ${list}`, {
      step: 'preflight',
      hint: `Commit or stash them first: ${asOwnerCommand(`git -C ${ctx.paths.appDir} stash push --include-untracked`, ctx.owner)}`,
    })
  }
}

/** Free space for the backup (about the size of data/) and the build (twice the running release, 64 MiB at least). */
export async function verifyDiskSpace(ctx: StepContext): Promise<Record<string, number>> {
  const { paths } = ctx
  const facts: Record<string, number> = {}
  if (ctx.j.options.backup) {
    const need = Math.ceil((await dirSize(paths.dataDir)) * 1.05) + (1 << 20)
    const free = await freeBytes(paths.backupDir)
    Object.assign(facts, { backupNeed: need, backupFree: free })
    if (free < need) {
      throw new UpdateError('DISK_FULL', `not enough space for the backup in ${paths.backupDir}: ${formatBytes(free)} free, about ${formatBytes(need)} needed`, {
        step: 'preflight',
        hint: 'Free space there (old backups: ls -lt BACKUP_DIR), or set BACKUP_DIR to a larger disk.',
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

async function verifyBackupDirWritable(dir: string, owner: RunAs | undefined): Promise<void> {
  try {
    // Made here, it belongs to the checkout's owner like the rest (sqlite3 writes its copies in it
    // as that user); one that exists keeps its owner.
    const made = await mkdir(dir, { recursive: true, mode: 0o700 })
    if (made === dir && owner && isRoot()) await chown(dir, owner.uid, owner.gid)
    await access(dir, constants.W_OK)
    const probe = path.join(dir, `.upkeep-probe-${process.pid}`)
    await writeFile(probe, '')
    await rm(probe)
  } catch (err) {
    throw new UpdateError('BACKUP_FAILED', `the backup directory ${dir} is not writable: ${(err as Error).message}`, {
      step: 'preflight',
      hint: 'Create it writable for the updater, or set BACKUP_DIR to another directory.',
      cause: err,
    })
  }
}

// Checks everything that can be checked before anything changes: a refusal here changes nothing.
export const preflight: Step = {
  name: 'preflight',
  async run(ctx) {
    const { j, git, paths } = ctx
    await verifyOwnership(paths.appDir, ctx.owner)
    await verifyCleanWorktree(ctx)
    if (j.kind === 'update') {
      if (!isReleaseTag(j.to.tag)) {
        throw new UpdateError('BAD_VERSION', `"${j.to.tag}" is not a release tag`, { step: 'preflight', hint: 'Tags look like v1.2.3 (or v1.2.3-rc.1).' })
      }
      let tags: Map<string, string>
      try {
        tags = await git.remoteTags()
      } catch (err) {
        throw new UpdateError('FETCH_FAILED', `cannot list the tags of origin: ${gitMessage(err)}`, {
          step: 'preflight',
          hint: `Check the network and \`git -C ${paths.appDir} remote get-url origin\`.`,
          cause: err,
        })
      }
      const commit = tags.get(j.to.tag)
      if (!commit) {
        const known = [...tags.keys()].filter(isReleaseTag).sort((a, b) => compareVersions(b, a)).slice(0, 5)
        throw new UpdateError('TAG_NOT_FOUND', `tag ${j.to.tag} is not on origin`, {
          step: 'preflight',
          hint: known.length ? `Newest release tags: ${known.join(', ')}.` : 'Origin has no release tags (v1.2.3) yet.',
        })
      }
      j.to.commit = commit
      if (!j.options.force && !isNewer(j.to.version, j.from.version)) {
        throw new UpdateError('NOT_NEWER', `${j.to.tag} is not newer than the running version ${j.from.version}`, {
          step: 'preflight',
          hint: `To reinstall or downgrade on purpose: upkeep update ${j.to.tag} --force`,
        })
      }
    }
    for (const dir of [paths.upkeepDir, paths.stagingRoot, paths.releases]) await mkdirOwned(dir, ctx.runAs)
    if (j.options.backup) await verifyBackupDirWritable(paths.backupDir, ctx.runAs)
    const disk = await verifyDiskSpace(ctx)
    await ctx.save()
    return { toCommit: j.to.commit, ...disk }
  },
}
