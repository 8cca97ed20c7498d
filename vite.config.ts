import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'

// The web UI: built into build/web (deploy/build.ts passes another outDir for releases).
export default defineConfig({
  root: fileURLToPath(new URL('./web', import.meta.url)),
  base: '/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'hono/jsx/dom' },
  build: {
    outDir: fileURLToPath(new URL('./build/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
  },
  server: {
    proxy: { '/api': 'http://127.0.0.1:8080' },
  },
})
