import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Run as root, tests start parts of Upkeep as an unprivileged user: it must reach the checkout.
    globalSetup: ['test/support/checkout-reachable.ts'],
    // Tests start real servers, git repositories and (later) systemd sandboxes.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: process.env.CI ? ['default'] : ['default'],
  },
})
