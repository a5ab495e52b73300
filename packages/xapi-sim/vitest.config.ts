import { defineProject } from 'vitest/config'

const report = process.env.XAPI_OPS_TEST_REPORT

export default defineProject({
  test: {
    name: 'xapi-sim',
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // .ci/run sums the JSON reports of every project into one closing line.
    reporters: report ? ['default', ['json', { outputFile: `${report}/xapi-sim.json` }]] : ['default'],
  },
})
