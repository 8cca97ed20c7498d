/**
 * Error codes are persisted (journal, history, API replies): add new ones, never rename old ones.
 */
export const UPDATE_ERROR_CODES = [
  'LOCKED',
  'UPDATE_RUNNING',
  'DIRTY_WORKTREE',
  'FOREIGN_OWNER',
  'NOT_NEWER',
  'TAG_NOT_FOUND',
  'TAG_MOVED',
  'BAD_VERSION',
  'BAD_REPO',
  'DISK_FULL',
  'BACKUP_FAILED',
  'FETCH_FAILED',
  'BUILD_FAILED',
  'SWITCH_FAILED',
  'RESTART_FAILED',
  'HEALTH_CHECK_FAILED',
  'ROLLBACK_FAILED',
  'STALE',
  'RECOVERY_GAVE_UP',
  'NOT_FOUND',
  'BAD_REQUEST',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'RATE_LIMITED',
  'UPSTREAM_ERROR',
  'INTERNAL',
  // Added by the updater engine (issue 4).
  'INTERRUPTED',
  'NO_RELEASE',
  'BAD_CONFIG',
  // Added by verified release artifacts and signed tags (issue 13).
  'DOWNLOAD_FAILED',
  'CHECKSUM_MISMATCH',
  'SIGNATURE_MISSING',
  'SIGNATURE_INVALID',
  'UNTRUSTED_SIGNER',
  'UNSAFE_ARCHIVE',
  'TAG_NOT_SIGNED',
  // Added by the server's request limits (issue 12).
  'PAYLOAD_TOO_LARGE',
  'UNKNOWN_HOST',
  'BUSY',
] as const

export type UpdateErrorCode = (typeof UPDATE_ERROR_CODES)[number]

export interface UpdateErrorOptions {
  step?: string
  hint?: string
  cause?: unknown
}

/** The one error type that crosses boundaries: the updater's journal, the CLI and the HTTP API. */
export class UpdateError extends Error {
  override name = 'UpdateError'
  readonly step: string | undefined
  readonly hint: string | undefined
  constructor(
    readonly code: UpdateErrorCode,
    message: string,
    opts: UpdateErrorOptions = {},
  ) {
    super(message, { cause: opts.cause })
    this.step = opts.step
    this.hint = opts.hint
  }

  toJSON(): { code: UpdateErrorCode; message: string; hint?: string; step?: string } {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint ? { hint: this.hint } : {}),
      ...(this.step ? { step: this.step } : {}),
    }
  }
}

/** A failed write to data/ as an error that says what could not be saved and what to check. */
export function writeFailed(what: string, err: unknown): UpdateError {
  const code = (err as NodeJS.ErrnoException)?.code
  const hint =
    code === 'ENOSPC' ? 'the disk is full: free space in the data directory' : code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? 'the data directory is not writable by this user' : undefined
  return new UpdateError(code === 'ENOSPC' ? 'DISK_FULL' : 'INTERNAL', `cannot save ${what}: ${code ?? (err instanceof Error ? err.message : String(err))}`, { hint, cause: err })
}

export function isUpdateError(err: unknown): err is UpdateError {
  return err instanceof UpdateError
}
