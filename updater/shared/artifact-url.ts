// Where an app's prebuilt releases may come from, checked where definitions and the environment
// are read (the server reads them too, so this lives in shared/; the downloads are in artifacts/).

/** https everywhere; http only to this machine (local mirrors, tests). Pure. */
export function isAllowedUrl(url: URL): boolean {
  if (url.protocol === 'https:') return true
  return url.protocol === 'http:' && (url.hostname === 'localhost' || url.hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(url.hostname))
}

/**
 * Why `pattern` is not an artifact URL pattern (an https URL of the tarball with `{version}` or
 * `{tag}` in it, SHA256SUMS and SHA256SUMS.sig beside it), or undefined when it is one. Pure.
 */
export function artifactUrlProblem(pattern: unknown): string | undefined {
  if (typeof pattern !== 'string' || !/\{(version|tag)\}/.test(pattern)) return 'must contain {version} or {tag}'
  let u: URL
  try {
    u = new URL(pattern.replaceAll('{version}', '0.0.0').replaceAll('{tag}', 'v0.0.0'))
  } catch {
    return `is not a URL: ${JSON.stringify(pattern.slice(0, 200))}`
  }
  if (!isAllowedUrl(u)) return 'must be https'
  if (u.username || u.password) return 'must not hold a user or password'
  if (u.search || u.hash || u.pathname.endsWith('/')) return "must end in the tarball's file name, without ? or #"
  return undefined
}

export const ARTIFACT_URL_EXAMPLE = 'https://downloads.example.com/widget/{version}/widget-{version}.tar.gz'
