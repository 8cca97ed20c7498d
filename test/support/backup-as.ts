// Makes a backup the way the updater's worker does, as whoever runs this script (tests run it as
// the data's owner): node --import tsx test/support/backup-as.ts '<CreateBackupOptions JSON>'
// Prints {ok: true, path} or {ok: false, code, message}.
import { cleanEnv } from '../../updater/adapters/clean-env'
import { createExec } from '../../updater/adapters/exec'
import { createBackup, type CreateBackupOptions } from '../../updater/backup-archive'

const opts = JSON.parse(process.argv[2]!) as Omit<CreateBackupOptions, 'exec' | 'now'>
const env = cleanEnv({ uid: process.getuid!(), gid: process.getgid!(), name: 'backup', home: '/' })
try {
  const r = await createBackup({ ...opts, now: new Date(), exec: createExec({ env }) })
  process.stdout.write(JSON.stringify({ ok: true, path: r.path }))
} catch (err) {
  const e = err as { code?: string; message?: string }
  process.stdout.write(JSON.stringify({ ok: false, code: e.code, message: e.message }))
}
