import { defineConfig } from 'vitest/config';

// The cluster tests (test/cluster/*.itest.ts) run only through `npm run test:cluster`, against a
// cluster started with `npm run cluster:up`; the normal `npm test` does not include them.
export default defineConfig({
  test: {
    root: new URL('../../', import.meta.url).pathname,
    include: ['test/cluster/**/*.itest.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
