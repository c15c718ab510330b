// Set-up steps shared by `npm start` and `npm test`. Uses Node built-ins only, because it runs
// before the project's dependencies are installed.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const root = new URL('..', import.meta.url).pathname;

export function run(cmd, args, opts = {}) {
  const res = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts, env: { ...process.env, ...opts.env } });
  if (res.error) throw res.error;
  return res.status ?? 1;
}

/** Installs npm dependencies when node_modules is missing or older than package-lock.json. */
export function ensureDeps() {
  const lock = join(root, 'package-lock.json');
  const stamp = join(root, 'node_modules', '.install-stamp');
  const want = createHash('sha256').update(readFileSync(lock)).digest('hex');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return;
  console.log('[setup] installing npm dependencies (npm ci) …');
  // onnxruntime-node's postinstall would download GPU binaries; the CPU build ships in the package.
  const status = run('npm', ['ci', '--no-audit', '--no-fund'], { env: { ONNXRUNTIME_NODE_INSTALL: 'skip' } });
  if (status !== 0) {
    console.error('[setup] npm ci failed; see the output above.');
    process.exit(status);
  }
  mkdirSync(join(root, 'node_modules'), { recursive: true });
  writeFileSync(stamp, want);
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/** Makes sure the Debian packages the browser tests need are present (Chromium only; never a downloaded browser). */
export function ensureDebianPackages(packages) {
  const missing = packages.filter((p) => !existsSync(p.path));
  if (missing.length === 0) return;
  const names = missing.map((p) => p.name);
  if (!isRoot()) {
    console.error(`[setup] missing: ${missing.map((p) => p.path).join(', ')}. Install them with: sudo apt-get install ${names.join(' ')}`);
    process.exit(1);
  }
  console.log(`[setup] installing Debian packages: ${names.join(' ')} …`);
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  if (run('apt-get', ['update', '-qq'], { env }) !== 0 || run('apt-get', ['install', '-y', '-qq', ...names], { env }) !== 0) {
    console.error(`[setup] apt-get install ${names.join(' ')} failed.`);
    process.exit(1);
  }
}

export function chromiumPath() {
  return process.env.CHROME_PATH ?? '/usr/bin/chromium';
}
