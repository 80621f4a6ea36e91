import { defineConfig } from 'vitest/config';

// The image test (test/images/image.itest.ts) builds and runs the project's image; it runs only
// through `npm run test:images`, the normal `npm test` does not include it (minutes when cold).
export default defineConfig({
  test: {
    root: new URL('../../', import.meta.url).pathname,
    include: ['test/images/**/*.itest.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    // A cold images/build.sh: the local base (mmdebstrap) and `npm ci` in the build.
    hookTimeout: 1_800_000,
  },
});
