import { createHash } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { githubHeaders, type GitHubRelease } from './msw'

export interface GitHubStub {
  /** What to give as GITHUB_API_URL. */
  url: string
  /** Replaces the releases `GET /repos/{repo}/releases` lists (newest first, like GitHub). */
  setReleases(repo: string, releases: GitHubRelease[]): void
  /** How many list requests were answered (200 or 304). */
  requests(): number
  close(): Promise<void>
}

/**
 * GitHub's releases API as a real HTTP server on 127.0.0.1, for tests where the server under
 * test runs in another process (msw only intercepts its own process). Payloads and headers come
 * from the same builders as the msw handlers; ETag / If-None-Match work as on GitHub.
 */
export async function startGitHubStub(): Promise<GitHubStub> {
  const releases = new Map<string, GitHubRelease[]>()
  let count = 0
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://stub')
    const m = /^\/repos\/([^/]+\/[^/]+)\/releases$/.exec(url.pathname)
    const rate = { limit: 60, remaining: 59 - (count % 59), reset: Math.floor(Date.now() / 1000) + 3600, used: (count % 59) + 1 }
    if (req.method !== 'GET' || !m || !releases.has(m[1]!)) {
      res.writeHead(404, Object.fromEntries(githubHeaders({ rate })))
      res.end(JSON.stringify({ message: 'Not Found', documentation_url: 'https://docs.github.com/rest/releases/releases#list-releases', status: '404' }))
      return
    }
    count++
    const body = JSON.stringify(releases.get(m[1]!))
    const etag = `W/"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"`
    const headers = Object.fromEntries(githubHeaders({ rate, etag, lastModified: new Date(0).toUTCString() }))
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, headers)
      res.end()
      return
    }
    res.writeHead(200, headers)
    res.end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    setReleases: (repo, list) => void releases.set(repo, list),
    requests: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
