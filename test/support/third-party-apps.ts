import { execFileSync } from 'node:child_process'
import { crc32, deflateSync } from 'node:zlib'
import path from 'node:path'

// A real third-party Node server app for the updater's tests: TileServer GL (light), a map tile
// server, exactly as the npm registry publishes it (tileserver-gl-light). It serves tiles from
// MBTiles files, which are SQLite databases, from its data directory; it answers GET /health with
// a plain 200 "OK" (503 "Starting" while it loads) and reports no version there.
//
// What an updater must know about it (measured here; see test/bench/app-fixtures.ts):
// - Installing runs `npm install` in the checkout (the package ships no lockfile): node-gyp
//   compiles sqlite3 from source (its prebuilt binary is a download the machine cannot make),
//   which needs the Node headers: npm_config_nodedir points at the system's, else node-gyp tries
//   to download them too. The install writes node_modules/ and package-lock.json into the
//   checkout (untracked, the package has no .gitignore), and its `prepare` script copies files from
//   node_modules into public/resources/ (identical to the tracked ones).
// - It reads its data and writes nothing: not into the checkout, not into the data directory.
// - It stops on SIGTERM (Node's default action: exit by signal, no drain).

/** The MBTiles file the app serves, inside its data directory. */
const TILES_FILE = 'tiles.mbtiles'

export const NODE_APP = {
  pkg: 'tileserver-gl-light',
  versions: {
    /** The version an operator installed first. */
    install: '5.1.3',
    /** The next release, the updater's target. */
    next: '5.5.0',
    /** A later release that also works: a second update, or the target of a fresh install. */
    later: '5.6.0',
    /**
     * None: every published version from 4.4.0 to 5.6.0 installs and starts on Node 20.19+ here
     * (checked: 4.4.0, 4.4.4, 5.0.0, 5.1.3, 5.5.0, 5.6.0). A broken-release case needs another
     * app (the Go app's v1.2.0, the two-unit app's v1.2.0).
     */
    broken: null,
  },
  /**
   * Run in the checkout, as its owner. A whole environment beyond PATH and HOME: node-gyp builds
   * sqlite3 against the system's Node headers instead of downloading them.
   */
  installCommands: [['npm', 'install', '--omit=dev', '--no-audit', '--no-fund']] as const,
  installEnv: { npm_config_nodedir: '/usr', npm_config_update_notifier: 'false' } as Record<string, string>,
  /** It runs in place: from its checkout, no build step. */
  startArgv: (checkoutDir: string, port: number, dataDir: string, node = '/usr/bin/node'): string[] => [
    node,
    path.join(checkoutDir, 'src/main.js'),
    '--file',
    path.join(dataDir, TILES_FILE),
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
  ],
  /** It needs nothing from the environment but PATH (argv says the rest). */
  env: {} as Record<string, string>,
  healthPath: '/health',
  /** The health answer: status 200 and this body, no version anywhere. */
  healthBody: 'OK',
  /** The data directory holds the MBTiles (SQLite) file the app serves. */
  dataDirName: 'data',
  tilesFile: TILES_FILE,
  /** A tile the seeded data holds, to check the app really reads its SQLite data. */
  tilePath: '/data/tiles/0/0/0.png',
} as const

/** A 1×1 PNG of the given RGB colour, for a tile that can be told apart after a restore. */
export function onePixelPng(rgb: [number, number, number]): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data])
    const len = Buffer.alloc(4)
    len.writeUInt32BE(data.length)
    const crc = Buffer.alloc(4)
    crc.writeUInt32BE(crc32(body))
    return Buffer.concat([len, body, crc])
  }
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(1, 0)
  ihdr.writeUInt32BE(1, 4)
  ihdr.set([8, 2, 0, 0, 0], 8) // 8-bit RGB, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.from([0, ...rgb]))),
    chunk('IEND', Buffer.alloc(0)),
  ])
}

/**
 * Writes the app's data into `dataDir`: an MBTiles (SQLite) file with one raster tile, made with
 * the sqlite3 command-line tool as an operator would import a tile set. Returns the file's path.
 */
export function seedNodeAppData(dataDir: string, opts: { name?: string; rgb?: [number, number, number] } = {}): string {
  const file = path.join(dataDir, TILES_FILE)
  const png = onePixelPng(opts.rgb ?? [0, 128, 255]).toString('hex')
  const meta: [string, string][] = [
    ['name', opts.name ?? 'test tiles'],
    ['format', 'png'],
    ['minzoom', '0'],
    ['maxzoom', '0'],
    ['bounds', '-180,-85,180,85'],
    ['center', '0,0,0'],
    ['type', 'baselayer'],
    ['version', '1'],
  ]
  const q = (s: string) => `'${s.replaceAll("'", "''")}'`
  execFileSync('sqlite3', [
    file,
    [
      'CREATE TABLE metadata (name text, value text);',
      'CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob);',
      'CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);',
      ...meta.map(([k, v]) => `INSERT INTO metadata VALUES (${q(k)}, ${q(v)});`),
      `INSERT INTO tiles VALUES (0, 0, 0, X'${png}');`,
    ].join('\n'),
  ])
  return file
}

/**
 * The unit an operator would write by hand for the app: it runs in place from its checkout, as
 * its own user, with its data directory beside the checkout (never inside it).
 */
export function nodeAppUnit(o: { user: string; checkout: string; port: number; dataDir: string; node?: string; description?: string }): string {
  const argv = NODE_APP.startArgv(o.checkout, o.port, o.dataDir, o.node)
  return `[Unit]
Description=${o.description ?? 'TileServer GL (light)'}
After=network.target

[Service]
Type=simple
User=${o.user}
WorkingDirectory=${o.checkout}
ExecStart=${argv.join(' ')}
Environment=NODE_ENV=production
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
`
}
