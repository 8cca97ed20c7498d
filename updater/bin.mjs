#!/usr/bin/env node
// `upkeep` from a source checkout (npm's bin link): runs the TypeScript through tsx.
// Installed builds run the bundle instead: `node current/upkeep.mjs`.
import { register } from 'tsx/esm/api'

register()
await import('./cli.ts')
