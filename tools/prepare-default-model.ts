// Run by `npm start`: makes sure public/models/ holds a converted model. When none is there, it
// builds the tiny random-weight demo model (q4 + fp32, WebGPU) so the whole app can be tried
// without downloading a real checkpoint.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { convertCheckpoint, ConvertError } from './lib/converter.ts';
import { MANIFEST_FILE } from './lib/manifest-writer.ts';
import { makeTinyCheckpoint, scaledConfigJson } from './lib/tiny-checkpoint.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const DEMO_MODEL_NAME = 'molmo2-tiny-random';

/** Converted model folders (those with a manifest), skipping unfinished `.tmp-`/`.old-` folders. */
export async function convertedModels(modelsDir: string): Promise<string[]> {
  if (!existsSync(modelsDir)) return [];
  const entries = await readdir(modelsDir, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory() && !/\.(tmp|old)-\d+$/.test(e.name) && existsSync(join(modelsDir, e.name, MANIFEST_FILE)))
    .map((e) => e.name)
    .sort();
}

export async function prepareDefaultModel(root = ROOT, log: (m: string) => void = (m) => console.error(`[prepare] ${m}`)): Promise<'existing' | 'built'> {
  const modelsDir = join(root, 'public', 'models');
  const existing = await convertedModels(modelsDir);
  if (existing.length) {
    log(`using the converted model${existing.length > 1 ? 's' : ''} in public/models: ${existing.join(', ')}`);
    return 'existing';
  }
  const checkpointDir = join(root, '.cache', 'tiny-checkpoint');
  if (!(await isCurrentTinyCheckpoint(checkpointDir))) {
    log(`no converted model found; writing a tiny random-weight checkpoint to ${checkpointDir}`);
    await makeTinyCheckpoint({ outDir: checkpointDir, seed: 0, size: 'tiny' });
  }
  await convertCheckpoint({
    source: checkpointDir,
    out: join(modelsDir, DEMO_MODEL_NAME),
    dtypes: ['q4', 'fp32'],
    targets: ['webgpu'],
    name: 'Molmo2 tiny (random weights)',
    sourceLabel: { repo: 'molmo2-web/tiny-random', revision: 'seed-0' },
    log,
  });
  log(`built the demo model public/models/${DEMO_MODEL_NAME} (random weights: its answers are meaningless)`);
  return 'built';
}

/** True when `dir` holds a complete tiny checkpoint (seed 0) made with the current widths. */
async function isCurrentTinyCheckpoint(dir: string): Promise<boolean> {
  try {
    const index = JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8'));
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    const shardsPresent = Object.values(index.weight_map as Record<string, string>).every((f) => existsSync(join(dir, f)));
    return shardsPresent && index.metadata?.random_seed === 0 && JSON.stringify(config) === JSON.stringify(await scaledConfigJson('tiny'));
  } catch {
    return false;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  prepareDefaultModel().then(
    () => process.exit(0),
    (e) => {
      console.error(`[prepare] ${e instanceof ConvertError ? e.lines.join('\n  ') : (e as Error).message}`);
      process.exit(1);
    },
  );
}
