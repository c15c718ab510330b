// `npm test`: install what is missing, then unit tests (Vitest) and browser tests (Playwright in
// Debian's Chromium), then one summary line.
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { chromiumPath, ensureDebianPackages, ensureDeps, root, run } from './ensure.mjs';

ensureDeps();
ensureDebianPackages([
  { name: 'chromium', path: chromiumPath() },
  { name: 'ffmpeg', path: process.env.FFMPEG_PATH ?? '/usr/bin/ffmpeg' }, // makes the browser tests' clips
]);

const out = join(root, '.cache', 'test-results');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const only = process.argv[2]; // optional: "unit" or "e2e"

const counts = { passed: 0, failed: 0, skipped: 0 };
let failedSuites = 0;

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
    const s = JSON.parse(readFileSync(json, 'utf8')).stats;
    counts.passed += s.expected + (s.flaky ?? 0);
    counts.failed += s.unexpected;
    counts.skipped += s.skipped;
    if (status !== 0 && s.unexpected === 0) failedSuites++;
  } else if (status !== 0) failedSuites++;
}

counts.failed += failedSuites;
console.log(`\n${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
process.exit(counts.failed > 0 ? 1 : 0);
