import { createBackup, pruneBackups } from '../backup-archive'
import type { Step } from '../context'

// Always before anything changes: a rollback can only restore what was saved here.
export const backup: Step = {
  name: 'backup',
  async run(ctx) {
    const { j, paths } = ctx
    if (!j.options.backup) {
      await ctx.emit({ type: 'log', level: 'warn', step: 'backup', message: 'backup skipped (--no-backup): a rollback cannot restore data/' })
      return { skipped: true }
    }
    let lastReport = 0
    const result = await createBackup({
      dataDir: paths.dataDir,
      backupDir: paths.backupDir,
      fromVersion: j.from.version,
      updateId: j.updateId,
      now: ctx.clock.now(),
      exec: ctx.exec,
      ...(ctx.runAs ? { runAs: ctx.runAs } : {}),
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
    const pruned = await pruneBackups(paths.backupDir, ctx.tunables.backupKeep)
    await ctx.emit({ type: 'log', level: 'info', step: 'backup', message: `backed up data/ to ${result.path}` })
    return { path: result.path, bytes: result.manifest.bytes, dataBytes: result.manifest.dataBytes, files: result.manifest.files.length, pruned: pruned.length }
  },
}
