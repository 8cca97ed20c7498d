import path from 'node:path'
import { createBackup, pruneBackups, type DataRoot } from '../backup-archive'
import type { Step, StepContext } from '../context'

/**
 * The app's data paths as archive roots: each under its path inside the checkout (or its absolute
 * path), Upkeep's own data dir under none, so its archives restore with a plain `tar xzf -C data`.
 */
export function dataRoots(ctx: Pick<StepContext, 'app' | 'paths'>): DataRoot[] {
  const own = ctx.app.name === 'upkeep'
  return ctx.paths.dataPaths.map((abs) => ({
    abs,
    prefix: own ? '' : abs.startsWith(ctx.paths.appDir + path.sep) ? path.relative(ctx.paths.appDir, abs) : abs.slice(1),
    exclude: ctx.app.data.exclude,
  }))
}

// Always before anything changes: a rollback can only restore what was saved here.
export const backup: Step = {
  name: 'backup',
  async run(ctx) {
    const { j, paths } = ctx
    if (!j.options.backup) {
      await ctx.emit({ type: 'log', level: 'warn', step: 'backup', message: 'backup skipped (--no-backup): a rollback cannot restore the data' })
      return { skipped: true }
    }
    if (!paths.dataPaths.length) {
      await ctx.emit({ type: 'log', level: 'info', step: 'backup', message: 'the app has no data paths ("data.paths" in its definition): nothing to back up' })
      return { skipped: true }
    }
    let lastReport = 0
    const result = await createBackup({
      app: ctx.app.name,
      roots: dataRoots(ctx),
      backupDir: paths.backupDir,
      fromVersion: j.from.version,
      updateId: j.updateId,
      now: ctx.clock.now(),
      exec: ctx.exec,
      signal: ctx.signal,
      onProgress: (done, total) => {
        const t = Date.now()
        if (t - lastReport < 500 && done < total) return
        lastReport = t
        void ctx.emit({ type: 'progress', step: 'backup', done, total, unit: 'bytes' })
      },
    })
    j.backup = { path: result.path, manifest: result.manifestPath }
    await ctx.save()
    const pruned = await pruneBackups(paths.backupDir, ctx.app.name, ctx.app.data.keep)
    await ctx.emit({ type: 'log', level: 'info', step: 'backup', message: `backed up ${paths.dataPaths.join(', ')} to ${result.path}` })
    return { path: result.path, bytes: result.manifest.bytes, dataBytes: result.manifest.dataBytes, files: result.manifest.files.length, pruned: pruned.length }
  },
}
