/**
 * How a release was installed (issue 13), kept in the journal, the history, the release's manifest
 * and `update-installed.json`: a signed artifact and the key that verified it, or a build of the
 * tag's source, whether that tag was signed (and by whom), and whether the dependencies were
 * reused. Persisted: fields may be added, none renamed.
 */
export type InstalledFrom =
  | { kind: 'artifact'; signer: string; fingerprint: string }
  | {
      kind: 'source'
      tag: { signed: true; signer: string; fingerprint: string } | { signed: false }
      /** Absent when the app has no dependency install of its own. */
      dependencies?: 'reused' | 'installed'
    }

/** A short key for people: `SHA256:abcdefgh…`. Pure. */
export function shortFingerprint(fingerprint: string): string {
  return fingerprint.length > 19 ? `${fingerprint.slice(0, 15)}…` : fingerprint
}

/** One line for the CLI: "artifact, verified by release@acme (SHA256:abcd…)". Pure. */
export function installedFromText(i: InstalledFrom | undefined): string {
  if (!i) return ''
  if (i.kind === 'artifact') return `artifact, verified by ${i.signer} (${shortFingerprint(i.fingerprint)})`
  const tag = i.tag.signed ? `tag signed by ${i.tag.signer} (${shortFingerprint(i.tag.fingerprint)})` : 'tag unsigned'
  return `source, ${tag}${i.dependencies ? `, dependencies ${i.dependencies}` : ''}`
}
