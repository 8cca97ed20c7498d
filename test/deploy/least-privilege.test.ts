import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { HistoryEntry } from '../../updater/shared/history'
import { INSTALL_DIR as DIR, startUpkeepSandbox, type UpkeepSandbox } from '../support/installed-upkeep'
import type { Sandbox } from '../support/sandbox'
import { upkeepApi, type UpkeepApi } from '../support/upkeep-api'

// Issue 12, must show 1 and 2, on a real systemd: root only does what needs root. The updater
// unit's root process takes no file of the server's: the requests are taken by user upkeep, and
// backup, restore, moving data aside, git and builds run as upkeep too (by the owner of every
// file and the user of every process seen during updates), with BACKUP_DIR on another
// filesystem (a tmpfs). Meanwhile a racer running as upkeep — the server's user, which a
// compromised server has — keeps swapping a folder of data/ and the restore's working folder
// for symlinks into root-only files, in a loop: nothing root-only is ever read or written.

const PASSWORD = 'least privilege password'
const BACKUPS = '/mnt/upkeep-backups'
const SECRET = '/root/secret'
// Made at run time: the checkout under test holds this file, so a literal would be found in it.
const SECRET_TEXT = `root-only-${randomUUID()}`

describe('what runs as root during updates, and what a racer as the server user gets', () => {
  let box: UpkeepSandbox
  let sb: Sandbox
  let api: UpkeepApi
  const seen = new Map<string, Set<string>>()

  /** user → commands of the processes in the updater's cgroup right now. */
  const sample = async () => {
    // The processes in the unit's cgroup, wherever this host mounts it (cgroup v2, or v1's name=systemd).
    const out = await sb.exec('sh', [
      '-c',
      'cg=$(systemctl show -p ControlGroup --value upkeep-updater.service); [ -n "$cg" ] || exit 0; for d in /sys/fs/cgroup /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do f=$d$cg/cgroup.procs; [ -f "$f" ] || continue; for p in $(cat "$f"); do ps -ww -o user=,args= -p $p; done; exit 0; done',
    ])
    for (const line of out.stdout.split('\n').filter(Boolean)) {
      const [user, ...args] = line.trim().split(/\s+/)
      const cmd = args.join(' ')
      if (!seen.has(user!)) seen.set(user!, new Set())
      seen.get(user!)!.add(cmd)
    }
  }

  /** The history entry of an update, read from the file the updater writes (as the sandbox's root). */
  const historyEntry = async (updateId: string): Promise<HistoryEntry> => {
    const deadline = Date.now() + 600_000
    while (Date.now() < deadline) {
      const text = (await sb.exec('cat', [`${DIR}/data/update-history.jsonl`])).stdout
      const entry = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as HistoryEntry).find((e) => e.id === updateId)
      if (entry) return entry
      await new Promise((r) => setTimeout(r, 500))
    }
    throw new Error(`update ${updateId} did not end within 600 s`)
  }

  beforeAll(async () => {
    box = await startUpkeepSandbox({ label: 'privilege', releases: [{ tag: 'v1.0.0' }, { tag: 'v1.1.0' }, { tag: 'v1.2.0', breaks: 'migrate-then-exit' }] })
    sb = box.sb
    const r = await box.installRelease('v1.0.0', [], { UPKEEP_ADMIN_PASSWORD: PASSWORD })
    if (r.code !== 0) throw new Error(`install.sh failed:\n${r.stdout}\n${r.stderr}`)
    // Backups on a filesystem of their own, as an operator would put them on another disk.
    await sb.execOk('install', ['-d', BACKUPS])
    await sb.execOk('mount', ['-t', 'tmpfs', '-o', 'size=256m,uid=upkeep,gid=upkeep,mode=0700', 'tmpfs', BACKUPS])
    for (const unit of ['upkeep-updater.service', 'upkeep-recover.service']) {
      await sb.writeFile(`/etc/systemd/system/${unit}.d/backups.conf`, `[Service]\nEnvironment=BACKUP_DIR=${BACKUPS}\nReadWritePaths=${BACKUPS}\n`)
    }
    await sb.execOk('systemctl', ['daemon-reload'])
    // Root-only files a racer would like root (or anyone) to read or overwrite.
    await sb.execOk('install', ['-d', '-m', '0700', SECRET])
    await sb.writeFile(`${SECRET}/key.txt`, `${SECRET_TEXT}\n`, '600')
    await sb.execOk('runuser', ['-u', 'upkeep', '--', 'sh', '-c', `mkdir -p ${DIR}/data/d && echo mine > ${DIR}/data/d/file.txt`])
    api = await upkeepApi(`http://127.0.0.1:${box.port}`, PASSWORD)
  }, 360_000)
  afterAll(async () => {
    await sb?.exec('umount', [BACKUPS])
    await box?.close()
  })

  test('an update and a rollback with data restored: root only started the worker and ran systemctl; everything else ran as upkeep', async () => {
    // The racer: as upkeep, swap data/d and any restore folder for links to root-only places, in a loop.
    await sb.writeFile(
      '/usr/local/bin/upkeep-racer',
      `#!/bin/sh
while :; do
  mv ${DIR}/data/d ${DIR}/data/d.real 2>/dev/null && ln -s ${SECRET} ${DIR}/data/d && sleep 0.01 && rm -f ${DIR}/data/d && mv ${DIR}/data/d.real ${DIR}/data/d
  for r in ${DIR}/data/.restore-* ${BACKUPS}/.restore-*; do [ -d "$r" ] && [ ! -L "$r" ] && mv "$r" "$r.x" 2>/dev/null && ln -s ${SECRET} "$r" && sleep 0.01 && rm -f "$r" && mv "$r.x" "$r"; done
done
`,
      '755',
    )
    await sb.execOk('systemd-run', ['--unit=upkeep-racer', '--uid=upkeep', '--gid=upkeep', '/usr/local/bin/upkeep-racer'])
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        await sample()
        await new Promise((r) => setTimeout(r, 50))
      }
    })()
    const results: HistoryEntry[] = []
    try {
      // Waited for in the history file, not through the server: a rollback the racer breaks leaves it stopped.
      for (const version of ['1.1.0', '1.2.0']) results.push(await historyEntry(await api.startUpdate(version)))
    } finally {
      sampling = false
      await sampler
      await sb.exec('systemctl', ['stop', 'upkeep-racer'])
      // Stopped anywhere in its loop: put data/d and any restore folder back as they were. A restore
      // the racer broke halfway may have left entries in its folder (undoing it raced too): put them
      // back as the error told, drop what 1.2.0 migrated, and start the server again (a broken
      // rollback leaves it stopped).
      await sb.execOk('runuser', ['-u', 'upkeep', '--', 'sh', '-c', `
        cd ${DIR}/data
        if [ -d d.real ]; then rm -f d; mv d.real d; fi
        for x in .restore-*.x; do [ -d "$x" ] || continue; rm -f "\${x%.x}"; mv "$x" "\${x%.x}"; done
        for e in .restore-*/.aside/* .restore-*/.aside/.[!.]*; do [ -e "$e" ] || continue; [ -e "\${e##*/}" ] || mv "$e" .; done
        rm -f migrated.json`])
      await sb.execOk('systemctl', ['start', 'upkeep.socket', 'upkeep.service'])
    }
    // The racer may make an update fail (its backup can read a link, not through it); it never gets root's files.
    console.log(`updates under the racer: ${results.map((e) => `${e.to.version} ${e.status}${e.error ? ` (${e.error.code}: ${e.error.message.split('\n')[0]})` : ''}`).join(', ')}`)
    console.log(`processes seen in upkeep-updater.service: ${[...seen].map(([u, cmds]) => `${u}: ${[...cmds].map((c) => c.slice(0, 120)).join(' | ')}`).join('\n  ')}`)
    const asRoot = [...(seen.get('root') ?? [])]
    expect(asRoot.length).toBeGreaterThan(0)
    // Root: the updater itself (node … apply-request) and the systemctl/journalctl it runs. Nothing else.
    // "(node)" is a node process of root's caught exiting, when its command line is gone already.
    for (const cmd of asRoot) expect(cmd, cmd).toMatch(/^(\S*node \S*upkeep[^ ]*\.mjs apply-request|\S*systemctl |\S*journalctl |\(node\)$)/)
    const asUpkeep = [...(seen.get('upkeep') ?? [])].join('\n')
    expect(asUpkeep).toMatch(/worker (update|recover)/)
    expect((await sb.execOk('cat', [`${DIR}/data/d/file.txt`])).trim()).toBe('mine')
    // No file anywhere in the checkout, data or backups is root's.
    expect((await sb.execOk('find', [DIR, BACKUPS, '-user', 'root'])).trim()).toBe('')
    // The secret was never copied anywhere the server could read.
    const leaked = await sb.exec('sh', ['-c', `grep -rl "${SECRET_TEXT}" ${DIR} ${BACKUPS}; for f in ${BACKUPS}/*.tar.gz; do tar xzOf "$f" 2>/dev/null | grep -c "${SECRET_TEXT}"; done`])
    expect(leaked.stdout.split('\n').filter((l) => l && l !== '0')).toEqual([])
  }, 900_000)

  test('without the racer: the rollback of 1.2.0 restores data/ as upkeep, from backups on the tmpfs, the migrated data kept aside', async () => {
    // The racer is gone: a clean run of the same path, checked file by file. A new login: the
    // racer may have broken a rollback of the first test halfway, sessions file included.
    api = await upkeepApi(`http://127.0.0.1:${box.port}`, PASSWORD)
    if ((await box.health()).version !== '1.1.0') expect((await api.waitForUpdate(await api.startUpdate('1.1.0'), 600_000)).status).toBe('complete')
    const entry = await api.waitForUpdate(await api.startUpdate('1.2.0'), 600_000)
    expect(entry, JSON.stringify(entry.error)).toMatchObject({ status: 'rolled_back', error: { code: 'HEALTH_CHECK_FAILED' } })
    expect(entry.backupPath?.startsWith(`${BACKUPS}/`)).toBe(true)
    expect(entry.dataAside).toBeDefined()
    expect((await sb.execOk('cat', [`${entry.dataAside}/migrated.json`])).trim()).toBe('{"schema":2}')
    expect((await sb.exec('test', ['-e', `${DIR}/data/migrated.json`])).code).toBe(1)
    const owners = await sb.execOk('stat', ['-c', '%U %n', `${DIR}/data/d/file.txt`, entry.backupPath!, entry.dataAside!, `${DIR}/data/update-journal.json`])
    for (const line of owners.trim().split('\n')) expect(line.startsWith('upkeep '), line).toBe(true)
    expect((await box.health()).version).toBe('1.1.0')
  }, 600_000)
})
