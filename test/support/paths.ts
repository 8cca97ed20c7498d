import path from 'node:path'

/** The project's checkout (tests run from it). */
export const repoRoot = path.resolve(import.meta.dirname, '../..')
export const tsxBin = path.join(repoRoot, 'node_modules', '.bin', 'tsx')
