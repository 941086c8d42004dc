// Prints "N passed, N failed" from Vitest JSON reports; a missing report or a test file
// that failed to load counts as a failure. Exit code 1 when anything failed.
import { existsSync, readFileSync } from 'node:fs';

let passed = 0;
let failed = 0;
let skipped = 0;
for (const file of process.argv.slice(2)) {
  if (!existsSync(file)) {
    console.log(`ci-summary: ${file} is missing (the runner did not finish)`);
    failed++;
    continue;
  }
  const report = JSON.parse(readFileSync(file, 'utf8'));
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += report.numPendingTests + (report.numTodoTests ?? 0);
  for (const suite of report.testResults) {
    const anyFailed = suite.assertionResults.some((a) => a.status === 'failed');
    if (suite.status === 'failed' && !anyFailed) {
      console.log(`ci-summary: ${suite.name} failed outside its tests: ${suite.message ?? ''}`);
      failed++;
    }
  }
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
