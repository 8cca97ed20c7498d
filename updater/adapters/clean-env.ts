import type { RunAs } from './exec'

/** PATH when the caller has none worth keeping. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

// Network settings a build may need to reach its registry; nothing else of the caller's (no
// npm_config_*, no NODE_OPTIONS, no root's HOME) reaches a build.
const PASSED_ON = ['http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'SSL_CERT_FILE', 'SSL_CERT_DIR', 'NODE_EXTRA_CA_CERTS', 'TZ']

/**
 * The environment builds and the app's commands run in: explicit, the same whoever started the
 * updater (root under systemd, an operator's shell, the server): the app's user and HOME, a fixed
 * PATH, C.UTF-8, the proxy settings, and what the app definition adds.
 */
export function cleanEnv(user: RunAs, opts: { path?: string; from?: NodeJS.ProcessEnv; extra?: Record<string, string> } = {}): Record<string, string> {
  const from = opts.from ?? process.env
  const env: Record<string, string> = {
    PATH: opts.path ?? from.PATH ?? DEFAULT_PATH,
    HOME: user.home,
    USER: user.name,
    LOGNAME: user.name,
    LANG: 'C.UTF-8',
    SHELL: '/bin/sh',
    // npm's own chatter about funding, audits and new versions of itself is noise in an update log.
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
    // Never wait for a password on a terminal nobody watches.
    GIT_TERMINAL_PROMPT: '0',
  }
  for (const k of PASSED_ON) if (from[k] !== undefined) env[k] = from[k]!
  return { ...env, ...opts.extra }
}
