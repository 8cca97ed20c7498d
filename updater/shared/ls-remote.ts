/**
 * `git ls-remote --tags` output (`<sha>\trefs/tags/<name>` lines, annotated tags also peeled as
 * `<name>^{}`) → tag name → the commit it points to. Pure; the one parser server and updater share.
 */
export function parseLsRemoteTags(output: string): Map<string, string> {
  const tags = new Map<string, string>()
  const peeled = new Map<string, string>()
  for (const line of output.split('\n')) {
    const m = /^([0-9a-f]{40,64})\s+refs\/tags\/(\S+)$/.exec(line.trim())
    if (!m) continue
    const [, sha, name] = m as unknown as [string, string, string]
    if (name.endsWith('^{}')) peeled.set(name.slice(0, -3), sha)
    else tags.set(name, sha)
  }
  for (const [name, sha] of peeled) tags.set(name, sha)
  return tags
}
