import { chmod, mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { ensureCommand } from './apt'
import { git } from './git-fixtures'

// A small Go app for the updater to update, written here: a notes server (stdlib only, so a build
// downloads nothing) that keeps its data in files under DATA_DIR and answers
//   GET /healthz  {"status":"ok","build":{"version":"1.1.0","go":"go1.19.8"}}
// with its version one level down (a health check reads it at the JSON pointer /build/version).
// Its own build script embeds the version `git describe` gives (-ldflags -X main.version=…).
// Tags:
//   v1.0.0, v1.1.0  good
//   v1.2.0          builds; at start writes a "migration" into DATA_DIR, then exits 1
//   v1.3.0          the build fails (a compile error)

export const GO_APP_TAGS = ['v1.0.0', 'v1.1.0', 'v1.2.0', 'v1.3.0'] as const

/** Facts about the Go app, for app definitions and unit files. */
export const GO_APP = {
  /** Run in the checkout (or release directory) of a tag; writes bin/notes-server. */
  buildCommands: [['sh', 'build.sh']] as const,
  /** What the build needs beyond PATH and a writable HOME (Go keeps GOCACHE and GOPATH under HOME). */
  buildEnv: { GOPROXY: 'off', GOTOOLCHAIN: 'local' } as Record<string, string>,
  /** The built program, relative to the checkout; .gitignore keeps bin/ out of git status. */
  binary: 'bin/notes-server',
  env: (port: number, dataDir: string): Record<string, string> => ({ PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir }),
  healthPath: '/healthz',
  /** JSON pointer of the version in the health answer. */
  versionPointer: '/build/version',
  /** Files v1.2.0 writes into DATA_DIR before it exits 1 (a rollback must undo them). */
  migrationFiles: ['schema-version', 'migrations.log'],
} as const

/**
 * Installs Debian's Go (golang-go) when `go` is missing: the app is built with the distribution's
 * toolchain, never one downloaded by `go` itself.
 */
export function ensureGo(): string {
  return ensureCommand('go', ['golang-go'], { purpose: 'the Go test app' })
}

const GO_MOD = `module notes

go 1.19
`

const GITIGNORE = `/bin/
`

// The app's own build script: `sh build.sh` (the argv an operator's app definition names).
const BUILD_SH = `#!/bin/sh
# Builds bin/notes-server, stamped with the version of this checkout's tag.
set -eu
cd "$(dirname "$0")"
version=$(git describe --tags --match 'v[0-9]*' 2>/dev/null || echo v0.0.0-dev)
# -buildvcs=false: the version comes from the tag above, and go need not run git itself.
CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-X main.version=\${version#v}" -o bin/notes-server .
echo "built notes-server \${version#v}"
`

type Behaviour = 'good' | 'crash-after-migration' | 'compile-error'

function mainGo(behaviour: Behaviour, feature: string): string {
  const migrate =
    behaviour === 'crash-after-migration'
      ? `
	// This release migrates the data, then cannot start: a rollback must restore DATA_DIR.
	if err := os.WriteFile(filepath.Join(dataDir, "schema-version"), []byte("2\\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	appendLine(filepath.Join(dataDir, "migrations.log"), "migrated to schema 2 by "+version)
	log.Print("cannot start: config key storage.driver is required since schema 2")
	os.Exit(1)
`
      : ''
  const broken = behaviour === 'compile-error' ? '\n\tlog.Printf("notes: %d", noteCount)' : ''
  return `package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "0.0.0-dev"

func main() {
	log.SetFlags(0)
	dataDir := os.Getenv("DATA_DIR")
	if dataDir == "" {
		log.Fatal("DATA_DIR is not set")
	}
	notesDir := filepath.Join(dataDir, "notes")
	if err := os.MkdirAll(notesDir, 0o755); err != nil {
		log.Fatal(err)
	}
	schema := filepath.Join(dataDir, "schema-version")
	if _, err := os.Stat(schema); os.IsNotExist(err) {
		if err := os.WriteFile(schema, []byte("1\\n"), 0o644); err != nil {
			log.Fatal(err)
		}
	}
${migrate}${broken}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"status": "ok", "build": map[string]string{"version": version, "go": runtime.Version()}})
	})
	mux.HandleFunc("/notes", func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			names, err := listNotes(notesDir)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			notes := []map[string]string{}
			for _, n := range names {
				b, err := os.ReadFile(filepath.Join(notesDir, n))
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				notes = append(notes, map[string]string{"id": strings.TrimSuffix(n, ".txt"), "text": string(b)})
			}
			writeJSON(w, notes)
		case http.MethodPost:
			body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			names, err := listNotes(notesDir)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			id := fmt.Sprintf("%04d", len(names)+1)
			if err := os.WriteFile(filepath.Join(notesDir, id+".txt"), body, 0o644); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusCreated)
			writeJSON(w, map[string]string{"id": id})
		default:
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	})

	port := os.Getenv("PORT")
	if port == "" {
		port = "8090"
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
	log.Printf("notes %s (%s) listening on %s", version, "${feature}", srv.Addr)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

func listNotes(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := []string{}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".txt") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

func appendLine(file, line string) {
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(line + "\\n"); err != nil {
		log.Fatal(err)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("content-type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
`
}

export interface GoAppOrigin {
  /** The bare repository to clone from. */
  bare: string
  /** Commit of each tag. */
  commits: Record<(typeof GO_APP_TAGS)[number], string>
}

/**
 * Creates the Go app's history in `dir` (work tree `dir/go-app-work`, bare `dir/go-app.git`) with
 * one commit and annotated tag per release. Readable by OWNER; chown it if OWNER must write.
 */
export async function createGoAppOrigin(dir: string): Promise<GoAppOrigin> {
  await mkdir(dir, { recursive: true })
  await chmod(dir, 0o755)
  const work = path.join(dir, 'go-app-work')
  await mkdir(work, { recursive: true })
  git(work, ['init', '-q'])
  const write = async (name: string, content: string, mode = 0o644) => {
    await writeFile(path.join(work, name), content)
    await chmod(path.join(work, name), mode)
  }
  await write('go.mod', GO_MOD)
  await write('.gitignore', GITIGNORE)
  await write('build.sh', BUILD_SH, 0o755)
  const releases: [(typeof GO_APP_TAGS)[number], Behaviour, string][] = [
    ['v1.0.0', 'good', 'notes'],
    ['v1.1.0', 'good', 'notes, Go version in health'],
    ['v1.2.0', 'crash-after-migration', 'schema 2'],
    ['v1.3.0', 'compile-error', 'note count'],
  ]
  const commits = {} as GoAppOrigin['commits']
  for (const [tag, behaviour, feature] of releases) {
    await write('main.go', mainGo(behaviour, feature))
    await write('CHANGES.md', `# Changes\n\n${releases.map(([t, , f]) => `- ${t}: ${f}`).slice(0, releases.findIndex(([t]) => t === tag) + 1).reverse().join('\n')}\n`)
    git(work, ['add', '-A'])
    git(work, ['commit', '-q', '-m', `release ${tag}: ${feature}`])
    git(work, ['tag', '-a', tag, '-m', tag])
    commits[tag] = git(work, ['rev-parse', 'HEAD'])
  }
  const bare = path.join(dir, 'go-app.git')
  git(dir, ['clone', '-q', '--bare', work, bare])
  return { bare, commits }
}

export type Layout = 'in-place' | 'current'

/**
 * The unit an operator would write by hand for the Go app. `in-place`: it runs from the checkout
 * itself; `current`: from `<checkout>/current`, a release directory behind a symlink the updater
 * manages.
 */
export function goAppUnit(o: { description?: string; user: string; checkout: string; port: number; dataDir: string; layout: Layout }): string {
  const root = o.layout === 'current' ? `${o.checkout}/current` : o.checkout
  return `[Unit]
Description=${o.description ?? 'Notes server (Go)'}
After=network.target

[Service]
Type=simple
User=${o.user}
WorkingDirectory=${root}
ExecStart=${root}/${GO_APP.binary}
Environment=PORT=${o.port}
Environment=HOST=127.0.0.1
Environment=DATA_DIR=${o.dataDir}
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
`
}
