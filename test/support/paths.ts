import path from 'node:path'

/** The project's checkout (tests run from it). */
export const repoRoot = path.resolve(import.meta.dirname, '../..')
