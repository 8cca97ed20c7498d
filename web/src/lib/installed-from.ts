import type { InstalledFrom } from '../../../updater/shared/installed-from'

// How a release was installed, in the page's words: a signed artifact and the key that verified
// it, or a build of the tag's source (its signature, whether dependencies were reused).

/** `SHA256:abcdefgh…`: enough of a key's fingerprint to recognise it; the whole one is the title. */
function shortKey(fingerprint: string): string {
  return fingerprint.length > 19 ? `${fingerprint.slice(0, 15)}…` : fingerprint
}

/** A sentence for the running version's facts. */
export function installedFromSentence(i: InstalledFrom | undefined): string | undefined {
  if (!i) return undefined
  if (i.kind === 'artifact') return `The signed release artifact, verified by ${i.signer} (key ${shortKey(i.fingerprint)}).`
  const tag = i.tag.signed ? `its tag signed by ${i.tag.signer} (key ${shortKey(i.tag.fingerprint)})` : 'its tag not signed'
  const deps = i.dependencies === 'reused' ? '; dependencies reused (the lockfile had not changed)' : i.dependencies === 'installed' ? '; dependencies installed' : ''
  return `Built from source, ${tag}${deps}.`
}

/** A few words for a history row. */
export function installedFromShort(i: InstalledFrom | undefined): string | undefined {
  if (!i) return undefined
  if (i.kind === 'artifact') return `artifact, key ${shortKey(i.fingerprint)}`
  return `source, ${i.tag.signed ? `signed by ${i.tag.signer}` : 'unsigned tag'}${i.dependencies === 'reused' ? ', deps reused' : ''}`
}

/** The full key, for a title attribute. */
export function installedFromKey(i: InstalledFrom | undefined): string | undefined {
  if (!i) return undefined
  return i.kind === 'artifact' ? i.fingerprint : i.tag.signed ? i.tag.fingerprint : undefined
}
