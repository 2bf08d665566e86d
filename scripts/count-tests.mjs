// Sums every test run recorded under the results folder: cargo's
// `test result:` lines and vitest's JSON reports. Prints `N passed, N failed`.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2] ?? '.test-results';
let passed = 0;
let failed = 0;
let skipped = 0;
for (const f of readdirSync(dir)) {
  const text = readFileSync(join(dir, f), 'utf8');
  if (f.endsWith('.log')) {
    for (const m of text.matchAll(/test result: \w+\. (\d+) passed; (\d+) failed/g)) {
      passed += Number(m[1]);
      failed += Number(m[2]);
    }
    // A crate whose test binary crashed prints no result line for it.
    if (/error: test failed|could not compile/.test(text) && !/test result: FAILED/.test(text)) failed += 1;
  } else if (f.endsWith('.json')) {
    const r = JSON.parse(text);
    passed += r.numPassedTests;
    skipped += r.numPendingTests + r.numTodoTests;
    failed += r.numFailedTests + (r.success || r.numFailedTestSuites === 0 ? 0 : r.numFailedTestSuites);
  }
}
if (skipped > 0) console.log(`(${skipped} skipped: see the NOTICE lines above)`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
