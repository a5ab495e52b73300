import { defineConfig } from 'vitest/config'

// Each package runs as its own vitest root under turbo, so reporters are set here, not in a
// root projects list.
const report = process.env.XAPI_OPS_TEST_REPORT

export default defineConfig({
  test: {
    name: 'xapi-formats',
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // .ci/run sums the JSON reports of every project into one closing line.
    reporters: report
      ? ['default', ['json', { outputFile: `${report}/xapi-formats.json` }]]
      : ['default'],
  },
})
