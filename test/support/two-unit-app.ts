import { chmod, mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { git } from './git-fixtures'

// The shape of the seed apps: one repository, two units built separately and restarted in order.
//   backend/   Go (stdlib only): GET /api/health {"status":"ok","version":"1.1.0"}, /api/items,
//              data in files under DATA_DIR; built by backend/build.sh (go build, version stamped)
//   frontend/  Node, no npm dependencies: `node frontend/build.mjs` writes frontend/dist/server.mjs,
//              a server that serves a page and proxies /api/* to BACKEND_URL; PORT from env
// Health is checked on the backend. Tags:
//   v1.0.0, v1.1.0  good
//   v1.2.0          the backend migrates DATA_DIR and runs; the frontend exits 1 at start

export const TWO_UNIT_TAGS = ['v1.0.0', 'v1.1.0', 'v1.2.0'] as const

/** Facts about the two-unit app, for app definitions and unit files. */
export const TWO_UNIT_APP = {
  /** Each run in the checkout (or release directory), backend first. */
  buildCommands: {
    backend: ['sh', 'backend/build.sh'],
    frontend: ['node', 'frontend/build.mjs'],
  } as const,
  /** What the backend's build needs beyond PATH and a writable HOME. */
  buildEnv: { GOPROXY: 'off', GOTOOLCHAIN: 'local' } as Record<string, string>,
  backendBinary: 'backend/bin/backend',
  frontendEntry: 'frontend/dist/server.mjs',
  backendEnv: (port: number, dataDir: string): Record<string, string> => ({ PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir }),
  frontendEnv: (port: number, backendPort: number): Record<string, string> => ({ PORT: String(port), HOST: '127.0.0.1', BACKEND_URL: `http://127.0.0.1:${backendPort}` }),
  /** On the backend. */
  healthPath: '/api/health',
  versionPointer: '/version',
  /** Restart order: the frontend needs the backend. */
  restartOrder: ['backend', 'frontend'] as const,
  /** What v1.2.0's backend writes into DATA_DIR at start. */
  migrationFiles: ['schema-version'],
} as const

const GO_MOD = `module backend

go 1.19
`

const BACKEND_BUILD = `#!/bin/sh
# Builds backend/bin/backend, stamped with the version of this checkout's tag.
set -eu
cd "$(dirname "$0")"
version=$(git describe --tags --match 'v[0-9]*' 2>/dev/null || echo v0.0.0-dev)
CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-X main.version=\${version#v}" -o bin/backend .
echo "built backend \${version#v}"
`

function backendGo(migrates: boolean): string {
  return `package main

import (
	"context"
	"encoding/json"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

var version = "0.0.0-dev"

func main() {
	log.SetFlags(0)
	dataDir := os.Getenv("DATA_DIR")
	if dataDir == "" {
		log.Fatal("DATA_DIR is not set")
	}
	items := filepath.Join(dataDir, "items.txt")
	schema := filepath.Join(dataDir, "schema-version")
	if _, err := os.Stat(schema); os.IsNotExist(err) {
		must(os.WriteFile(schema, []byte("1\\n"), 0o644))
	}
${migrates ? '\tmust(os.WriteFile(schema, []byte("2\\n"), 0o644)) // this release migrates the data\n' : ''}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"status": "ok", "version": version})
	})
	mux.HandleFunc("/api/items", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			name := strings.TrimSpace(r.URL.Query().Get("name"))
			if name == "" {
				http.Error(w, "name is required", http.StatusBadRequest)
				return
			}
			f, err := os.OpenFile(items, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			defer f.Close()
			if _, err := f.WriteString(name + "\\n"); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusCreated)
		}
		b, err := os.ReadFile(items)
		if err != nil && !os.IsNotExist(err) {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		list := []string{}
		for _, l := range strings.Split(string(b), "\\n") {
			if l != "" {
				list = append(list, l)
			}
		}
		writeJSON(w, list)
	})
	port := os.Getenv("PORT")
	if port == "" {
		port = "8091"
	}
	host := os.Getenv("HOST")
	if host == "" {
		host = "127.0.0.1"
	}
	srv := &http.Server{Addr: net.JoinHostPort(host, port), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	log.Printf("backend %s listening on %s", version, srv.Addr)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("content-type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
`
}

const FRONTEND_PACKAGE = `{
  "name": "seed-frontend",
  "version": "0.0.0",
  "private": true,
  "type": "module",
  "scripts": { "build": "node build.mjs" }
}
`

const FRONTEND_BUILD = `// Frontend build: node frontend/build.mjs → frontend/dist/server.mjs, with the tag's version.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'

const here = path.dirname(new URL(import.meta.url).pathname)
let version = '0.0.0-dev'
try {
  version = execFileSync('git', ['describe', '--tags', '--match', 'v[0-9]*'], { cwd: here, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().replace(/^v/, '')
} catch {}
mkdirSync(path.join(here, 'dist'), { recursive: true })
const source = readFileSync(path.join(here, 'src', 'server.mjs'), 'utf8')
writeFileSync(path.join(here, 'dist', 'server.mjs'), source.replaceAll('__VERSION__', version))
console.log('built frontend ' + version)
`

function frontendServer(crashes: boolean): string {
  return `// The frontend: serves a page and proxies /api/* to the backend.
import http from 'node:http'

const version = '__VERSION__'
const backend = new URL(process.env.BACKEND_URL || 'http://127.0.0.1:8091')
${crashes ? "console.error('frontend ' + version + ': cannot start: THEME is not set (required since 1.2.0)')\nprocess.exit(1)\n" : ''}
const page = (v) => \`<!doctype html><html><head><meta charset="utf-8"><title>Seed app</title></head><body><h1>Seed app</h1><p id="version">frontend \${v}</p></body></html>\`

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/api/')) {
    const upstream = http.request({ host: backend.hostname, port: backend.port, path: req.url, method: req.method, headers: { ...req.headers, host: backend.host } }, (up) => {
      res.writeHead(up.statusCode, up.headers)
      up.pipe(res)
    })
    upstream.on('error', (err) => {
      res.writeHead(502, { 'content-type': 'text/plain' })
      res.end('backend unreachable: ' + err.message)
    })
    req.pipe(upstream)
    return
  }
  if (req.url === '/' || req.url === '/index.html') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
    return res.end(page(version))
  }
  res.writeHead(404).end()
})
server.listen(Number(process.env.PORT || 8092), process.env.HOST || '127.0.0.1', () => console.log('frontend ' + version + ' listening'))
process.on('SIGTERM', () => server.close(() => process.exit(0)))
`
}

export interface TwoUnitOrigin {
  bare: string
  commits: Record<(typeof TWO_UNIT_TAGS)[number], string>
}

/** The seed-shaped app's history in `dir` (bare repository `dir/two-unit-app.git`). */
export async function createTwoUnitOrigin(dir: string): Promise<TwoUnitOrigin> {
  await mkdir(dir, { recursive: true })
  await chmod(dir, 0o755)
  const work = path.join(dir, 'two-unit-work')
  for (const d of ['backend', 'frontend/src']) await mkdir(path.join(work, d), { recursive: true })
  git(work, ['init', '-q'])
  const write = async (name: string, content: string, mode = 0o644) => {
    await writeFile(path.join(work, name), content)
    await chmod(path.join(work, name), mode)
  }
  await write('.gitignore', '/backend/bin/\n/frontend/dist/\n')
  await write('backend/go.mod', GO_MOD)
  await write('backend/build.sh', BACKEND_BUILD, 0o755)
  await write('frontend/package.json', FRONTEND_PACKAGE)
  await write('frontend/build.mjs', FRONTEND_BUILD)
  const releases: [(typeof TWO_UNIT_TAGS)[number], { backendMigrates: boolean; frontendCrashes: boolean }][] = [
    ['v1.0.0', { backendMigrates: false, frontendCrashes: false }],
    ['v1.1.0', { backendMigrates: false, frontendCrashes: false }],
    ['v1.2.0', { backendMigrates: true, frontendCrashes: true }],
  ]
  const commits = {} as TwoUnitOrigin['commits']
  for (const [tag, r] of releases) {
    await write('backend/main.go', backendGo(r.backendMigrates))
    await write('frontend/src/server.mjs', frontendServer(r.frontendCrashes))
    await write('CHANGES.md', `# Changes\n\n${tag}\n`)
    git(work, ['add', '-A'])
    git(work, ['commit', '-q', '-m', `release ${tag}`])
    git(work, ['tag', '-a', tag, '-m', tag])
    commits[tag] = git(work, ['rev-parse', 'HEAD'])
  }
  const bare = path.join(dir, 'two-unit-app.git')
  git(dir, ['clone', '-q', '--bare', work, bare])
  return { bare, commits }
}

/**
 * The two units an operator would write by hand, both running from `<checkout>/current` (a
 * release directory behind a symlink the updater manages). The frontend is ordered after the
 * backend and wants it.
 */
export function twoUnitUnits(o: { name: string; user: string; checkout: string; dataDir: string; backendPort: number; frontendPort: number; node?: string }): { backend: string; frontend: string } {
  const root = `${o.checkout}/current`
  const backend = `[Unit]
Description=${o.name} backend
After=network.target

[Service]
Type=simple
User=${o.user}
WorkingDirectory=${root}/backend
ExecStart=${root}/${TWO_UNIT_APP.backendBinary}
Environment=PORT=${o.backendPort}
Environment=HOST=127.0.0.1
Environment=DATA_DIR=${o.dataDir}
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
`
  const frontend = `[Unit]
Description=${o.name} frontend
After=network.target ${o.name}-backend.service
Wants=${o.name}-backend.service

[Service]
Type=simple
User=${o.user}
WorkingDirectory=${root}/frontend
ExecStart=${o.node ?? '/usr/bin/node'} ${root}/${TWO_UNIT_APP.frontendEntry}
Environment=PORT=${o.frontendPort}
Environment=HOST=127.0.0.1
Environment=BACKEND_URL=http://127.0.0.1:${o.backendPort}
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
`
  return { backend, frontend }
}
