// The converted test model for the runtime browser tests: a tiny random Molmo2 in the published
// Hugging Face layout (real Qwen3 tokenizer and token ids, released 378 px / 14 px ViT geometry, the
// tiny widths of tools/lib/tiny-checkpoint.ts, 9 ViT blocks) with a decoder head size of 16 and width 96, so the
// WebGPU-target decoder uses GroupQueryAttention with its static KV cache (head_dim % 8 = 0) and an
// int4 embedding table (d_model % 32 = 0). It is
// written with the real converter into public/models/, served by Vite like any converted model, and
// rebuilt only when the builders' sources change: once per test run, shared by every spec file (a
// conversion takes ~12 s on a loaded 2-core machine), and removed by the run's global teardown
// (e2e/global-teardown.ts). Test runs may overlap (several ports): a build goes to its own folders and
// is moved into place whole, and the folder is removed only by the last run using it.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseMolmo2Config, type Molmo2Config } from '../src/molmo2/config.ts';
import { randomTensors, type MemoryTensors } from '../src/molmo2/reference/testing.ts';
import { writeSafetensors } from '../src/molmo2/safetensors.ts';
import { MOLMO2_4B_ASSETS, readAssetJson, VERBATIM_CONFIG_FILES } from '../tools/lib/assets.ts';
import { convertCheckpoint, type ConvertOptions } from '../tools/lib/converter.ts';
import { olmoTokenizerFiles } from '../tools/lib/olmo-tokenizer.ts';
import { buildTokenizerJson, scaledConfigJson, type Family } from '../tools/lib/tiny-checkpoint.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const MODEL_NAME = 'e2e-runtime-tiny';
export const MODEL_URL = `/models/${MODEL_NAME}/`;
export const MODEL_DIR = join(ROOT, 'public', 'models', MODEL_NAME);
const WORK = join(ROOT, '.cache', 'e2e-runtime');
const SEED = 5;

export interface RuntimeModel {
  config: Molmo2Config;
  tensors: MemoryTensors;
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
}

/** The test model's config.json: the tiny widths with the keys and values of `family`'s published config. */
async function configJson(family: Family = '4b'): Promise<Record<string, unknown>> {
  const json = await scaledConfigJson('tiny', family);
  // head_dim 16 for GroupQueryAttention; d_model 96 (a multiple of 32) for the int4 embedding table.
  // Widths stay distinct: 4 heads × 16 = 64 query width ≠ 96.
  Object.assign(json.text_config as Record<string, unknown>, { head_dim: 16, hidden_size: 96 });
  // 9 ViT blocks, the fewest the published vit_layers [-3, -9] allow: features come from blocks 6 and 0
  // and 7 blocks run (the published 27 run 25), so vision on SwiftShader takes about a third as long.
  (json.vit_config as Record<string, unknown>).num_hidden_layers = 9;
  (json.adapter_config as Record<string, unknown>).text_hidden_size = 96;
  return json;
}

/** Hash of everything the converted folder depends on. */
async function fingerprint(config: Record<string, unknown>): Promise<string> {
  const h = createHash('sha256').update(JSON.stringify(config)).update(String(SEED));
  for (const dir of ['src/molmo2', 'src/molmo2/onnx', 'tools/lib']) {
    for (const f of (await readdir(join(ROOT, dir), { withFileTypes: true })).filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')).map((e) => e.name).sort()) {
      h.update(f).update(await readFile(join(ROOT, dir, f)));
    }
  }
  h.update(await readFile(fileURLToPath(import.meta.url))); // the conversion's settings (dtypes, targets)
  return h.digest('hex');
}

let cached: Promise<TestModelParts> | undefined;

/** Test runs using the model: one empty file per Playwright runner process id. */
const USERS = join(WORK, 'users');

/**
 * The process that stands for this test run: the Playwright runner (the parent of a test worker, and
 * the process that runs the global teardown), so every worker of a run, and a worker restarted after a
 * failure, counts as the same user.
 */
const runPid = (): number => (process.env.TEST_WORKER_INDEX !== undefined ? process.ppid : process.pid);

/**
 * Builds (once per run: a later spec file finds the folder in place and its fingerprint unchanged) and
 * describes the test model; the weights are regenerated in memory for references, once per worker.
 */
export function ensureRuntimeModel(log: (m: string) => void = () => {}): Promise<TestModelParts> {
  cached ??= mkdir(USERS, { recursive: true })
    .then(() => writeFile(join(USERS, String(runPid())), ''))
    .then(() => build(log))
    .catch((e: unknown) => {
      cached = undefined;
      throw e;
    });
  return cached;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes the converted folder at the end of a test run (the global teardown), so `npm start` does not
 * mistake it for a model the user converted (it serves whatever public/models/ holds); kept while
 * another run that uses it is still going.
 */
export async function removeRuntimeModel(): Promise<void> {
  cached = undefined;
  const me = runPid();
  await rm(join(USERS, String(me)), { force: true });
  const others = existsSync(USERS) ? (await readdir(USERS)).map(Number).filter((pid) => pid !== me && alive(pid)) : [];
  if (others.length === 0) await rm(MODEL_DIR, { recursive: true, force: true });
}

/**
 * Writes a checkpoint in the published layout into `ckpt`: config, tokenizer, the published config
 * files, and the tensors in one safetensors shard listed by model.safetensors.index.json.
 */
export async function writeTestCheckpoint(ckpt: string, m: { json: Record<string, unknown>; tensors: MemoryTensors; tokenizerJson: Record<string, unknown>; configFiles?: ConfigFiles }): Promise<void> {
  await rm(ckpt, { recursive: true, force: true });
  await mkdir(ckpt, { recursive: true });
  await writeFile(join(ckpt, 'config.json'), JSON.stringify(m.json, null, 2));
  for (const f of VERBATIM_CONFIG_FILES) {
    const own = m.configFiles?.[f];
    if (own) await writeFile(join(ckpt, f), JSON.stringify(own, null, 2));
    else await copyFile(join(MOLMO2_4B_ASSETS, f), join(ckpt, f));
  }
  await writeFile(join(ckpt, 'tokenizer.json'), JSON.stringify(m.tokenizerJson));
  const shard = 'model-00001-of-00001.safetensors';
  const entries = [...m.tensors.tensors].map(([name, t]) => ({ name, dtype: 'F32' as const, shape: t.shape, data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) }));
  await writeFile(join(ckpt, shard), writeSafetensors(entries));
  const index = {
    metadata: { total_size: entries.reduce((s, e) => s + e.data.byteLength, 0), random_weights: true },
    weight_map: Object.fromEntries(entries.map((e) => [e.name, shard])),
  };
  await writeFile(join(ckpt, 'model.safetensors.index.json'), JSON.stringify(index, null, 2));
}

/**
 * Writes the model as a checkpoint (writeTestCheckpoint) and converts it with the real converter into
 * `out`: q4, q4f16 and fp32, for the WebGPU and CPU targets, unless `convert` says otherwise. The
 * device check and benchmarks convert their own checkpoints through it too.
 */
export async function convertTestModel(
  out: string,
  m: {
    json: Record<string, unknown>;
    tensors: MemoryTensors;
    tokenizerJson: Record<string, unknown>;
    configFiles?: ConfigFiles;
    name: string;
    source: { repo: string; revision: string };
    log?: (m: string) => void;
    /** Other variants than the test model's (benchmarks). */
    convert?: Pick<ConvertOptions, 'dtypes' | 'targets' | 'q4' | 'maxChunkBytes'>;
  },
): Promise<void> {
  const ckpt = `${out}-checkpoint`;
  await writeTestCheckpoint(ckpt, m);
  await rm(out, { recursive: true, force: true });
  try {
    await convertCheckpoint({
      source: ckpt,
      out,
      dtypes: ['q4', 'q4f16', 'fp32'],
      targets: ['webgpu', 'cpu'],
      name: m.name,
      sourceLabel: m.source,
      log: m.log,
      ...m.convert,
    });
  } finally {
    await rm(ckpt, { recursive: true, force: true });
  }
}

/** Config files of a family that differ from Molmo2-4B's (O-7B's tokenizer and generation configs). */
type ConfigFiles = Partial<Record<string, Record<string, unknown>>>;

/** What the test model is converted from: its config.json (and files of its own) besides the parsed model. */
export type TestModelParts = RuntimeModel & { json: Record<string, unknown>; configFiles?: ConfigFiles };

/**
 * The test model's config.json, tokenizer and weights, regenerated in memory; with `family`, the same
 * widths and seed under another published Molmo2 config (the family spec).
 */
export async function runtimeModelParts(family: Family = '4b'): Promise<TestModelParts> {
  const json = await configJson(family);
  // O-7B has OLMo-3's tokenizer, token ids and generation config (generated: tools/lib/olmo-tokenizer.ts).
  const olmo = family === 'o-7b' ? await olmoTokenizerFiles() : null;
  const generation = olmo ? olmo['generation_config.json'] : await readAssetJson('generation_config.json');
  const check = parseMolmo2Config(json, generation);
  if (!check.config) throw new Error(`test config is invalid: ${[...check.missing, ...check.errors].join('; ')}`);
  const config = check.config;
  const tensors = randomTensors(config, SEED);
  if (olmo) {
    const { 'tokenizer.json': tokenizerJson, ...configFiles } = olmo;
    return { json, config, tensors, tokenizerJson, tokenizerConfig: olmo['tokenizer_config.json'], configFiles };
  }
  return { json, config, tensors, tokenizerJson: await buildTokenizerJson(), tokenizerConfig: await readAssetJson('tokenizer_config.json') };
}

async function build(log: (m: string) => void): Promise<TestModelParts> {
  const parts = await runtimeModelParts();
  const { json, tensors, tokenizerJson } = parts;
  const stamp = join(WORK, 'fingerprint');
  const want = await fingerprint(json);
  const have = existsSync(stamp) ? await readFile(stamp, 'utf8') : '';
  if (have === want && existsSync(join(MODEL_DIR, 'manifest.json'))) return parts;

  log(`building ${MODEL_DIR}`);
  const out = join(WORK, `model-${process.pid}`);
  await convertTestModel(out, { json, tensors, tokenizerJson, name: 'Molmo2 e2e tiny (random weights)', source: { repo: 'molmo2-web/e2e-runtime-tiny', revision: `seed-${SEED}` }, log });
  await rm(MODEL_DIR, { recursive: true, force: true });
  await rename(out, MODEL_DIR);
  await writeFile(stamp, want);
  return parts;
}
