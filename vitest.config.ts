// Test runner settings: unit/integration tests and the Playwright editor tests all run under vitest.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // ORT uses both cores per session; running test files two at a time keeps the suite quick
    // without oversubscribing the machine.
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default', './tests/summary-reporter.ts'],
    globalSetup: ['./tests/private-tmp.ts'],
  },
});
