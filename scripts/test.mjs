// `npm test`: install what is missing, then the type-check of every layer, unit tests (Vitest) and
// browser tests (Playwright in Debian's Chromium), then one summary line.
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { chromiumPath, ensureDebianPackages, ensureDeps, root, run } from './ensure.mjs';
import { typecheck } from './typecheck.mjs';

ensureDeps();
ensureDebianPackages([
  { name: 'chromium', path: chromiumPath() },
  { name: 'ffmpeg', path: process.env.FFMPEG_PATH ?? '/usr/bin/ffmpeg' }, // makes the browser tests' clips
]);

const out = join(root, '.cache', 'test-results');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const only = process.argv[2]; // optional: "unit" or "e2e"

const counts = { passed: 0, failed: 0, expectedFailures: 0, skipped: 0 };

/** Playwright's report counts a test marked test.fail() that failed as "expected": these are counted apart. */
function expectedFailures(suites = []) {
  let n = 0;
  for (const suite of suites) {
    for (const spec of suite.specs ?? []) for (const t of spec.tests ?? []) if (t.expectedStatus === 'failed' && t.status === 'expected') n++;
    n += expectedFailures(suite.suites);
  }
  return n;
}
let failedSuites = 0;

// Every type error, in any layer, counts as a failure (scripts/typecheck.mjs).
if (!only || only === 'unit') {
  for (const layer of typecheck()) counts.failed += layer.errors;
}

if (!only || only === 'unit') {
  const json = join(out, 'vitest.json');
  const status = run('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${json}`]);
  if (existsSync(json)) {
    const r = JSON.parse(readFileSync(json, 'utf8'));
    counts.passed += r.numPassedTests;
    counts.failed += r.numFailedTests;
    counts.skipped += r.numPendingTests + (r.numTodoTests ?? 0);
    if (status !== 0 && r.numFailedTests === 0) failedSuites++;
  } else if (status !== 0) failedSuites++;
}

if (!only || only === 'e2e') {
  const json = join(out, 'playwright.json');
  const status = run('npx', ['playwright', 'test', '--reporter=list,json'], { env: { PLAYWRIGHT_JSON_OUTPUT_NAME: json } });
  if (existsSync(json)) {
    const report = JSON.parse(readFileSync(json, 'utf8'));
    const s = report.stats;
    const failedAsExpected = expectedFailures(report.suites);
    counts.passed += s.expected - failedAsExpected + (s.flaky ?? 0);
    counts.expectedFailures += failedAsExpected;
    counts.failed += s.unexpected;
    counts.skipped += s.skipped;
    if (status !== 0 && s.unexpected === 0) failedSuites++;
  } else if (status !== 0) failedSuites++;
}

counts.failed += failedSuites;
console.log(`\n${counts.passed} passed, ${counts.failed} failed, ${counts.expectedFailures} expected failure${counts.expectedFailures === 1 ? '' : 's'}, ${counts.skipped} skipped`);
process.exit(counts.failed > 0 ? 1 : 0);
