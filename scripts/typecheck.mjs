// Type-checks each layer with its own compiler settings, so the compiler keeps the boundaries between
// them: src/molmo2 sees no platform types, the runtime and workers see no DOM window, and so on (see
// docs/architecture.md). Run alone (`npm run typecheck`) or from scripts/test.mjs.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

// Each config's comment says what its layer may use.
export const layers = [
  { name: 'molmo2 + demo scenes (no platform types)', config: 'tsconfig.molmo2.json' },
  { name: 'runtime + workers (WebWorker, WebGPU)', config: 'tsconfig.runtime.json' },
  { name: 'page (DOM, React)', config: 'tsconfig.ui.json' },
  { name: 'tools (Node)', config: 'tsconfig.node.json' },
  { name: 'scripts (Node, plain JavaScript)', config: 'tsconfig.scripts.json' },
  { name: 'unit tests of molmo2, demo scenes and tools (Node)', config: 'tsconfig.test.json' },
  { name: 'unit tests of runtime and page (Node + DOM)', config: 'tsconfig.test-web.json' },
  { name: 'browser tests (Node + DOM)', config: 'tsconfig.e2e.json' },
];

/** Checks every layer in turn (one at a time: the checks share the machine); returns the results. */
export function typecheck() {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  return layers.map(({ name, config }) => {
    const r = spawnSync(process.execPath, [tsc, '-p', config, '--pretty', 'false'], { cwd: root, encoding: 'utf8' });
    const output = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
    const errors = (output.match(/error TS\d+/g) ?? []).length || (r.status === 0 ? 0 : 1);
    console.log(`[typecheck] ${config}: ${name} — ${errors === 0 ? 'ok' : `${errors} error${errors === 1 ? '' : 's'}`}`);
    if (output) console.log(output);
    return { name, config, errors };
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const failed = typecheck().filter((l) => l.errors > 0).length;
  process.exit(failed > 0 ? 1 : 0);
}
