import { constants } from 'node:fs'
import { mkdir, open, stat } from 'node:fs/promises'
import path from 'node:path'
import { APP_NAME_RE } from '../shared/apps/definition'
import { createRegistry } from '../shared/apps/registry'
import { UpdateError } from '../shared/errors'
import { createAppPaths, createManagerPaths } from '../shared/paths'
import { loadConfigOrExit } from '../shared/runtime'
import { createRunTool } from '../artifacts/run-tool'
import { keyFingerprint, pinKey, readTrustedKeys, rotateKey, ROTATION_NAMESPACE, type TrustChange } from '../artifacts/trust'
import { print } from '../console-status'
import { EXIT, fail, parseOptions, UsageError } from './common'

// `upkeep app trust NAME --key NEW.pub [--signature NEW.pub.sig] [--replace] [--keep-old]`: the keys
// an app's signed releases and tags are verified with. They live beside the app's definition,
// root's, so neither the app's user nor the server can re-pin them.

export const TRUST_USAGE = 'upkeep app trust NAME --key PUBKEY_FILE [--signature SIG_FILE] [--replace] [--keep-old] [--principal NAME] [--json]'

/** A small file the operator names (a .pub, its signature): read whole, at most 64 KiB, never a FIFO. */
async function readSmallFile(file: string, what: string): Promise<string> {
  let h
  try {
    h = await open(file, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  try {
    const s = await h.stat()
    if (!s.isFile() || s.size > 64 << 10) throw new UsageError(`${what} ${file} is not a regular file of at most 64 KiB`)
    return await h.readFile('utf8')
  } finally {
    await h.close()
  }
}

/** Only whoever owns the apps directory (root, in an install) may change what an app trusts. */
async function verifyMayPin(appsDir: string, command: string): Promise<void> {
  const self = process.getuid?.()
  if (self === 0) {
    await mkdir(appsDir, { recursive: true, mode: 0o755 })
    return
  }
  const owner = await stat(appsDir).then((s) => s.uid, () => undefined)
  if (owner !== self) {
    throw new UpdateError('FORBIDDEN', `the pinned keys in ${appsDir} are root's`, { hint: `run it as root: sudo ${command}` })
  }
}

function changeText(name: string, change: TrustChange): string {
  const added = change.keys.find((k) => keyFingerprint(k.key) === change.added)
  const ns = added?.options.find(([n]) => n === 'namespaces')?.[1]
  return [
    `${name}: pinned ${change.added}${added ? ` as ${added.principal}${typeof ns === 'string' ? ` (${ns})` : ''}` : ''}`,
    change.signedBy ? `  signed by the pinned key ${change.signedBy}` : '  pinned by the operator (no signature asked for)',
    ...change.removed.map((fp) => `  no longer trusted: ${fp}`),
    `  keys now pinned: ${change.keys.length}`,
  ].join('\n')
}

export async function appTrustCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(
    args,
    {
      key: { type: 'string' },
      signature: { type: 'string' },
      replace: { type: 'boolean' },
      'keep-old': { type: 'boolean' },
      principal: { type: 'string' },
      json: { type: 'boolean' },
    },
    true,
  )
  const name = positionals[0]
  if (positionals.length !== 1 || !name || !APP_NAME_RE.test(name)) throw new UsageError(`trust takes one app name: ${TRUST_USAGE}`)
  if (!values.key) throw new UsageError(`--key names the new public key (.pub): ${TRUST_USAGE}`)
  if (values.signature && values.replace) throw new UsageError('--signature (a rotation the old key signed) and --replace (the operator overrides) exclude each other')
  if (values.principal && values.signature) throw new UsageError('a rotated key keeps the principal of the key that signed it: --principal is for a first pin or --replace')
  if (values['keep-old'] && !values.signature) throw new UsageError('--keep-old keeps the key that signed the new one: it needs --signature')
  const json = values.json === true
  try {
    const config = loadConfigOrExit(process.env, import.meta.url)
    const app = await createRegistry(config).get(name)
    const file = createAppPaths(app, createManagerPaths(config)).allowedSigners
    const command = `upkeep app trust ${args.join(' ')}`
    await verifyMayPin(path.dirname(file), command)
    const newKeyText = await readSmallFile(values.key, 'the key')
    let change: TrustChange
    if (values.signature) {
      change = await rotateKey(createRunTool(), file, { newKeyText, signature: await readSmallFile(values.signature, 'the signature'), keepOld: values['keep-old'] === true })
    } else {
      const pinned = await readTrustedKeys(file)
      if (pinned.length && !values.replace) {
        throw new UpdateError('UNTRUSTED_SIGNER', `${name} already has ${pinned.length} pinned key(s) (${pinned.map((k) => keyFingerprint(k.key)).join(', ')}): a new one needs the old key's signature`, {
          hint: `sign it with the pinned key: ssh-keygen -Y sign -f OLD_KEY -n ${ROTATION_NAMESPACE} ${path.basename(values.key)}, then add --signature ${path.basename(values.key)}.sig; or, if the old key is lost or leaked, override it explicitly with --replace`,
        })
      }
      change = await pinKey(file, { publicKey: newKeyText, principal: values.principal ?? `${name}-release`, replace: values.replace === true })
    }
    if (json) print(JSON.stringify({ app: name, file, ...change, keys: change.keys.map((k) => ({ principal: k.principal, fingerprint: keyFingerprint(k.key) })) }))
    else print(`${changeText(name, change)}\n  file: ${file}`)
    return EXIT.ok
  } catch (err) {
    return fail(err, json)
  }
}
