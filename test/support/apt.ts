import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'

const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** Where `cmd` is on PATH (or the system PATH), if anywhere. */
export function which(cmd: string): string | undefined {
  for (const dir of `${process.env.PATH ?? ''}:${SYSTEM_PATH}`.split(':').filter(Boolean)) {
    const p = path.join(dir, cmd)
    if (existsSync(p)) return p
  }
  return undefined
}

const checked = new Set<string>()

/**
 * Makes sure `cmd` exists, installing `packages` with apt-get when it does not (one
 * `apt-get update` and a retry if the first attempt fails). A test that needs a tool never skips:
 * when it cannot be installed (not root, no apt, no network), this throws naming the command to run.
 */
export function ensureCommand(cmd: string, packages: string[], opts: { purpose: string; manual?: string } = { purpose: 'the tests' }): string {
  const found = which(cmd)
  if (found && checked.has(cmd)) return found
  if (found) {
    checked.add(cmd)
    return found
  }
  const manual = opts.manual ?? `apt-get update && apt-get install -y ${packages.map((p) => p.split('=')[0]).join(' ')}`
  if (process.getuid?.() !== 0) throw new Error(`${cmd} is missing (needed by ${opts.purpose}); install it as root: ${manual}`)
  if (!which('apt-get')) throw new Error(`${cmd} is missing (needed by ${opts.purpose}) and there is no apt-get here: install ${packages.join(' ')} with your package manager`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const install = () => spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...packages], { encoding: 'utf8', env })
  process.stderr.write(`${opts.purpose}: ${cmd} is missing; installing ${packages.join(' ')} with apt-get\n`)
  let r = install()
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-q'], { encoding: 'utf8', env })
    r = install()
  }
  const installed = which(cmd)
  if (r.status !== 0 || !installed) {
    const tail = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n')
    throw new Error(`${cmd} is missing (needed by ${opts.purpose}) and \`apt-get install ${packages.join(' ')}\` failed:\n${tail}\nInstall it yourself (as root): ${manual}`)
  }
  checked.add(cmd)
  return installed
}
