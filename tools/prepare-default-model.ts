// Run by `npm start`: makes sure public/models/ holds a model that answers. It builds the demo model
// — Molmo2's layout trained here on synthetic shapes (tools/train-demo/), not Molmo2's weights —
// from the weights the repository keeps, converted like any checkpoint (q4 + fp32, WebGPU), so a
// first run points at and tracks something without downloading a real checkpoint. Without those
// weights, and with no other model there, it builds the tiny random-weight model instead.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { convertCheckpoint, ConvertError } from './lib/converter.ts';
import { MANIFEST_FILE } from './lib/manifest-writer.ts';
import { makeTinyCheckpoint, scaledConfigJson } from './lib/tiny-checkpoint.ts';
import { DEMO_WEIGHTS_FILE, writeDemoCheckpoint } from './lib/demo-checkpoint.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const RANDOM_MODEL_NAME = 'molmo2-tiny-random';
export const DEMO_MODEL_NAME = 'molmo2-demo-shapes';
// Says what the shipped weights are: still early in training (their points are not yet at the shapes).
export const DEMO_MODEL_TITLE = "Molmo2 demo: synthetic shapes, early training (not Molmo2's weights)";
const DEMO_REPO = 'molmo2-web/demo-shapes';

/** Converted model folders (those with a manifest), skipping unfinished `.tmp-`/`.old-` folders. */
export async function convertedModels(modelsDir: string): Promise<string[]> {
  if (!existsSync(modelsDir)) return [];
  const entries = await readdir(modelsDir, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory() && !/\.(tmp|old)-\d+$/.test(e.name) && existsSync(join(modelsDir, e.name, MANIFEST_FILE)))
    .map((e) => e.name)
    .sort();
}

export async function prepareDefaultModel(
  root = ROOT,
  log: (m: string) => void = (m) => console.error(`[prepare] ${m}`),
  demoWeights = DEMO_WEIGHTS_FILE,
): Promise<'existing' | 'built'> {
  const modelsDir = join(root, 'public', 'models');
  if (existsSync(demoWeights)) return prepareDemoModel(root, modelsDir, demoWeights, log);
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
    out: join(modelsDir, RANDOM_MODEL_NAME),
    dtypes: ['q4', 'fp32'],
    targets: ['webgpu'],
    name: 'Molmo2 tiny (random weights)',
    sourceLabel: { repo: 'molmo2-web/tiny-random', revision: 'seed-0' },
    log,
  });
  log(`built the model public/models/${RANDOM_MODEL_NAME} (random weights: its answers are meaningless)`);
  return 'built';
}

/** The demo model, converted unless public/models already holds the conversion of these very weights. */
async function prepareDemoModel(root: string, modelsDir: string, weights: string, log: (m: string) => void): Promise<'existing' | 'built'> {
  const out = join(modelsDir, DEMO_MODEL_NAME);
  if (await isDemoConversionOf(out, weights)) {
    log(`using the demo model in public/models/${DEMO_MODEL_NAME}`);
    return 'existing';
  }
  log(`building the demo model (trained on synthetic shapes) from ${weights}`);
  await convertDemoModel(out, join(root, '.cache', 'demo-checkpoint'), weights, log);
  log(`built the demo model public/models/${DEMO_MODEL_NAME} (trained on coloured circles, squares and triangles; early training)`);
  return 'built';
}

/** The revision a demo conversion records: the first 16 hex digits of the weights file's sha256. */
async function demoRevision(weights: string): Promise<string> {
  return createHash('sha256').update(await readFile(weights)).digest('hex').slice(0, 16);
}

/** True when `out` holds the conversion of exactly these demo weights. */
export async function isDemoConversionOf(out: string, weights: string): Promise<boolean> {
  try {
    const manifest = JSON.parse(await readFile(join(out, MANIFEST_FILE), 'utf8'));
    return manifest.source?.repo === DEMO_REPO && manifest.source?.revision === (await demoRevision(weights));
  } catch {
    return false;
  }
}

/** Rebuilds the demo checkpoint in `checkpointDir` and converts it into `out` (q4 + fp32, WebGPU). */
export async function convertDemoModel(out: string, checkpointDir: string, weights = DEMO_WEIGHTS_FILE, log: (m: string) => void = () => {}): Promise<void> {
  await writeDemoCheckpoint(checkpointDir, weights);
  await convertCheckpoint({
    source: checkpointDir,
    out,
    dtypes: ['q4', 'fp32'],
    targets: ['webgpu'],
    name: DEMO_MODEL_TITLE,
    sourceLabel: { repo: DEMO_REPO, revision: await demoRevision(weights) },
    log,
  });
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
