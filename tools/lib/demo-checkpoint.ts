// The demo model: a `make-tiny --size demo` checkpoint (seeded random values, real Molmo2 layout) with
// the tensors `npm run train-demo` trained put in place. What training changed is all that is kept in
// the repository (tools/assets/demo-model/trained.safetensors, float16): every tensor but the three
// vocabulary tables whole, and of those only the rows of the tokens the scenes use
// (`<name>@rows`, their ids in the file's metadata). lm_head rows outside them are zero — the trainer
// computed its softmax that way — and the embedding keeps its seeded random rows there.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseHeader, toFloat32, writeSafetensors } from '../../src/molmo2/safetensors.ts';
import { float32ToFloat16Into } from '../../src/molmo2/fp16.ts';
import { names } from '../../src/molmo2/tensors.ts';
import { readCheckpointFolder, SafetensorsCheckpoint } from './checkpoint.ts';
import { RANDOM_WEIGHTS_KEY, makeTinyCheckpoint } from './tiny-checkpoint.ts';

export const DEMO_ASSETS = fileURLToPath(new URL('../assets/demo-model/', import.meta.url));
export const DEMO_WEIGHTS_FILE = join(DEMO_ASSETS, 'trained.safetensors');

export interface Tensor {
  shape: number[];
  data: Float32Array;
}

export interface TrainedWeights {
  /** Whole tensors, and `<vocabulary table>@rows` blocks. */
  tensors: Map<string, Tensor>;
  /** Base-vocabulary token ids of the embedding@rows and lm_head@rows blocks, in order. */
  baseRows: number[];
  /** Added-token rows (id − vocab_size) of the new_embedding@rows block. */
  newRows: number[];
  metadata: Record<string, string>;
}

const ROWS = '@rows';
const VOCABULARY_TABLES = [names.embedding, names.newEmbedding, names.lmHead];

export async function readTrainedWeights(file: string): Promise<TrainedWeights> {
  const bytes = new Uint8Array(await readFile(file));
  const header = parseHeader(bytes, bytes.byteLength);
  const tensors = new Map<string, Tensor>();
  for (const [name, t] of header.tensors) {
    tensors.set(name, { shape: t.shape, data: toFloat32(bytes.subarray(header.dataStart + t.begin, header.dataStart + t.end), t.dtype) });
  }
  const metadata = header.metadata ?? {};
  const list = (key: string): number[] => {
    const v = JSON.parse(metadata[key] ?? 'null');
    if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x) && x >= 0)) throw new Error(`${file}: metadata ${key} is not a list of row ids`);
    return v;
  };
  return { tensors, baseRows: list('base_rows'), newRows: list('new_rows'), metadata };
}

/** Writes trained weights as float16 (the repository's copy); metadata as given plus the row ids. */
export async function writeTrainedWeightsF16(file: string, w: TrainedWeights, metadata: Record<string, string>): Promise<void> {
  const list = [...w.tensors.keys()].sort().map((name) => {
    const t = w.tensors.get(name)!;
    const half = new Uint16Array(t.data.length);
    float32ToFloat16Into(t.data, half);
    return { name, dtype: 'F16' as const, shape: t.shape, data: new Uint8Array(half.buffer) };
  });
  await writeFile(file, writeSafetensors(list, { ...metadata, base_rows: JSON.stringify(w.baseRows), new_rows: JSON.stringify(w.newRows) }));
}

/** The checkpoint's tensor `name` with the trained values put in (the initial values are read from `init`). */
export function applyTrained(name: string, init: Tensor, w: TrainedWeights): Tensor {
  const whole = w.tensors.get(name);
  if (whole) {
    if (whole.shape.join() !== init.shape.join()) throw new Error(`trained ${name} is ${whole.shape.join('×')}, the checkpoint's ${init.shape.join('×')}`);
    return whole;
  }
  if (!VOCABULARY_TABLES.includes(name)) throw new Error(`the trained weights have no ${name}`);
  const rows = w.tensors.get(name + ROWS);
  if (!rows) throw new Error(`the trained weights have no ${name}${ROWS}`);
  const ids = name === names.newEmbedding ? w.newRows : w.baseRows;
  const d = init.shape[1];
  if (rows.shape.join() !== [ids.length, d].join()) throw new Error(`${name}${ROWS} is ${rows.shape.join('×')}, expected ${ids.length}×${d}`);
  const data = name === names.lmHead ? new Float32Array(init.data.length) : init.data.slice();
  ids.forEach((id, r) => {
    if (id >= init.shape[0]) throw new Error(`${name}${ROWS}: row ${id} is past the table's ${init.shape[0]} rows`);
    data.set(rows.data.subarray(r * d, (r + 1) * d), id * d);
  });
  return { shape: init.shape, data };
}

/**
 * Writes the demo checkpoint to `outDir`: the demo-size checkpoint of the trained weights' seed, every
 * shard rewritten with the trained values; the index says the weights are trained, not random.
 */
export async function writeDemoCheckpoint(outDir: string, weightsFile = DEMO_WEIGHTS_FILE): Promise<void> {
  const w = await readTrainedWeights(weightsFile);
  const seed = Number(w.metadata.init_seed ?? NaN);
  if (!Number.isInteger(seed)) throw new Error(`${weightsFile}: metadata has no init_seed`);
  await makeTinyCheckpoint({ outDir, size: 'demo', seed });
  const folder = await readCheckpointFolder(outDir);
  const source = await SafetensorsCheckpoint.open(folder);
  const indexFile = join(outDir, 'model.safetensors.index.json');
  const index = JSON.parse(await readFile(indexFile, 'utf8')) as { metadata: Record<string, unknown>; weight_map: Record<string, string> };
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(index.weight_map)) byShard.set(shard, [...(byShard.get(shard) ?? []), name]);
  for (const [shard, tensorNames] of byShard) {
    const list = [];
    for (const name of tensorNames) {
      const t = applyTrained(name, { shape: source.shape(name), data: await source.read(name) }, w);
      list.push({ name, dtype: 'F32' as const, shape: t.shape, data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) });
    }
    await writeFile(join(outDir, shard), writeSafetensors(list));
  }
  await source.close();
  index.metadata = { ...index.metadata, [RANDOM_WEIGHTS_KEY]: false, demo_trained: true, demo_weights: w.metadata.weights_sha256 ?? 'unknown' };
  await writeFile(indexFile, `${JSON.stringify(index, null, 2)}\n`);
}
