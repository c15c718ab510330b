// Random Molmo2 checkpoints in the published Hugging Face layout (config files, Qwen3 tokenizer with
// Molmo2's extra tokens — OLMo-3's, generated, for the O-7B family; MolmoPoint's grounding tokens on top for
// the MolmoPoint family — sharded float32 safetensors + index). Used by tests, the demo model and
// benchmarks. Widths are scaled down but the token ids, vocabulary, patch size, crop size and the
// 25 ViT blocks the adapter reads stay as published, so every real code path is exercised.
// The full sizes (4b, 8b) keep the published config.json whole (every width and depth) and store the
// weights as BF16 in shards of at most 5 GB, to halve the disk they take; see published-configs.ts.
import { mkdir, readFile, writeFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseMolmo2Config, type Molmo2Config } from '../../src/molmo2/config.ts';
import { expectedTensors, names } from '../../src/molmo2/tensors.ts';
import { Rng } from './random.ts';
import { byteLength, writeSafetensorsStreaming, type TensorPlan } from './safetensors-writer.ts';
import { MOLMO2_4B_ASSETS, VERBATIM_CONFIG_FILES, qwen3TokenizerPath, readAssetJson } from './assets.ts';
import { molmoPointProcessorConfig, molmoPointTokenizerFiles } from './molmopoint-tokenizer.ts';
import { olmoTokenizerFiles, type OlmoTokenizerFiles } from './olmo-tokenizer.ts';
import { FAMILIES, FULL_SIZES, publishedConfigJson, type Family, type FullSize } from './published-configs.ts';

export type TinySize = 'tiny' | 'medium' | 'bench' | 'demo';
export const TINY_SIZES: readonly TinySize[] = ['tiny', 'medium', 'bench', 'demo'];
export { FAMILIES, FULL_SIZES, type Family, type FullSize };
/** Every size makeTinyCheckpoint writes: scaled-down widths (float32) or a published config whole (BF16). */
export type CheckpointSize = TinySize | FullSize;
export const CHECKPOINT_SIZES: readonly CheckpointSize[] = [...TINY_SIZES, ...FULL_SIZES];
export const isFullSize = (size: string): size is FullSize => (FULL_SIZES as readonly string[]).includes(size);

export interface CheckpointWidths {
  vit: { hidden: number; heads: number; headDim: number; intermediate: number };
  /** Attention pooling (heads × headDim) → wo → hidden → SwiGLU projector (intermediate) → text hidden. */
  adapter: { heads: number; headDim: number; hidden: number; intermediate: number };
  text: { hidden: number; heads: number; kvHeads: number; headDim: number; layers: number; intermediate: number };
  /** ViT depth when not the published one: blocks declared and the blocks vit_layers reads (negative, from the end). */
  vitDepth?: { declared: number; read: number[] };
  /** MolmoPoint's patch_embed_dim (the point head's query/key width), when not the published 512. */
  pointEmbedDim?: number;
}

/**
 * tiny: every width different so a swapped dimension fails loudly (ViT 32 = 4×8, ViT MLP 36, pooling
 * 4×11 = 44 = adapter, projector 52, decoder 40 with 4×16 = 64 query width and 2 KV heads, MLP 56;
 * MolmoPoint's point head 24).
 * medium: runtime benchmarks. bench: Molmo2-4B widths with 2 decoder layers (conversion benchmark).
 * demo: the starting point of the demo model `npm run train-demo` trains (tools/train-demo/): wide enough
 * to learn to point at shapes, 4 ViT blocks so training on 2 CPU cores takes minutes per thousand
 * steps; d_model a multiple of 32 and head_dim of 8 for the WebGPU decoder's int4 table and GQA.
 */
export const WIDTHS: Record<TinySize, CheckpointWidths> = {
  tiny: {
    vit: { hidden: 32, heads: 4, headDim: 8, intermediate: 36 },
    adapter: { heads: 4, headDim: 11, hidden: 44, intermediate: 52 },
    text: { hidden: 40, heads: 4, kvHeads: 2, headDim: 16, layers: 3, intermediate: 56 },
    pointEmbedDim: 24,
  },
  medium: {
    vit: { hidden: 256, heads: 4, headDim: 64, intermediate: 960 },
    adapter: { heads: 4, headDim: 64, hidden: 256, intermediate: 1536 },
    text: { hidden: 512, heads: 8, kvHeads: 2, headDim: 128, layers: 4, intermediate: 1536 },
    pointEmbedDim: 96,
  },
  bench: {
    vit: { hidden: 1152, heads: 16, headDim: 72, intermediate: 4304 },
    adapter: { heads: 16, headDim: 72, hidden: 1152, intermediate: 9728 },
    text: { hidden: 2560, heads: 32, kvHeads: 8, headDim: 128, layers: 2, intermediate: 9728 },
  },
  demo: {
    vit: { hidden: 64, heads: 4, headDim: 16, intermediate: 128 },
    adapter: { heads: 4, headDim: 16, hidden: 64, intermediate: 192 },
    text: { hidden: 128, heads: 4, kvHeads: 2, headDim: 32, layers: 4, intermediate: 256 },
    vitDepth: { declared: 4, read: [-1, -3] },
  },
};

/** Key in model.safetensors.index.json `metadata` that marks a checkpoint whose weights are random. */
export const RANDOM_WEIGHTS_KEY = 'random_weights';

/** True when an index (parsed model.safetensors.index.json) was written by makeTinyCheckpoint. */
export function isRandomWeightsIndex(index: unknown): boolean {
  const meta = (index as { metadata?: Record<string, unknown> } | null)?.metadata;
  return meta?.[RANDOM_WEIGHTS_KEY] === true;
}

/** The published config.json of `family` (Molmo2-4B unless told) with its widths replaced; every other key and value is kept. */
export async function scaledConfigJson(size: TinySize, family: Family = '4b'): Promise<Record<string, unknown>> {
  const w = WIDTHS[size];
  const config = await publishedConfigJson(family);
  const vit = config.vit_config as Record<string, unknown>;
  const adapter = config.adapter_config as Record<string, unknown>;
  const text = config.text_config as Record<string, unknown>;
  Object.assign(vit, {
    hidden_size: w.vit.hidden,
    num_attention_heads: w.vit.heads,
    num_key_value_heads: w.vit.heads,
    head_dim: w.vit.headDim,
    intermediate_size: w.vit.intermediate,
  });
  if (w.vitDepth) {
    vit.num_hidden_layers = w.vitDepth.declared;
    adapter.vit_layers = [...w.vitDepth.read];
  }
  Object.assign(adapter, {
    hidden_size: w.adapter.hidden,
    num_attention_heads: w.adapter.heads,
    num_key_value_heads: w.adapter.heads,
    head_dim: w.adapter.headDim,
    intermediate_size: w.adapter.intermediate,
    text_hidden_size: w.text.hidden,
  });
  // O-7B's decoder has full multi-head attention, so its scaled copies keep as many KV heads as heads.
  const multiHead = text.num_key_value_heads === text.num_attention_heads;
  Object.assign(text, {
    hidden_size: w.text.hidden,
    num_attention_heads: w.text.heads,
    num_key_value_heads: multiHead ? w.text.heads : w.text.kvHeads,
    head_dim: w.text.headDim,
    num_hidden_layers: w.text.layers,
    intermediate_size: w.text.intermediate,
  });
  if (Array.isArray(text.rope_scaling_layers)) text.rope_scaling_layers = scaledRopeLayers(w.text.layers);
  if (config.model_type === 'molmo_point' && w.pointEmbedDim) config.patch_embed_dim = w.pointEmbedDim;
  return config;
}

/**
 * YaRN layers of a scaled O-7B: the published pattern — the last layer of every four (3, 7, …, 31) —
 * over the scaled depth, and always the last layer, so even a 3-layer decoder has both kinds.
 */
export function scaledRopeLayers(layers: number): number[] {
  return Array.from({ length: layers }, (_, i) => i).filter((i) => i % 4 === 3 || i === layers - 1);
}

/**
 * The Qwen3 tokenizer with every token of Molmo2's tokenizer_config `added_tokens_decoder` registered
 * at its published id (151643–151945: Qwen specials, 267 padding tokens, Molmo2's image/video tokens).
 */
export async function buildTokenizerJson(): Promise<Record<string, unknown>> {
  const tokenizer = JSON.parse(await readFile(qwen3TokenizerPath(), 'utf8')) as Record<string, unknown> & {
    added_tokens: { id: number; content: string }[];
    model: { vocab: Record<string, number> };
  };
  const decoder = (await readAssetJson('tokenizer_config.json')).added_tokens_decoder as Record<
    string,
    { content: string; lstrip: boolean; normalized: boolean; rstrip: boolean; single_word: boolean; special: boolean }
  >;
  const baseVocab = Object.keys(tokenizer.model.vocab).length;
  const added = Object.entries(decoder)
    .map(([id, t]) => ({
      id: Number(id),
      content: t.content,
      single_word: t.single_word,
      lstrip: t.lstrip,
      rstrip: t.rstrip,
      normalized: t.normalized,
      special: t.special,
    }))
    .sort((a, b) => a.id - b.id);
  for (const t of added) {
    if (t.id < baseVocab) throw new Error(`added token ${t.content} has id ${t.id} inside the base vocabulary (${baseVocab})`);
  }
  for (const q of tokenizer.added_tokens) {
    const m = added.find((a) => a.id === q.id);
    if (!m || m.content !== q.content) throw new Error(`Qwen3 token ${q.content} (${q.id}) is not at the same id in Molmo2's tokenizer_config`);
  }
  tokenizer.added_tokens = added;
  return tokenizer;
}

type Init = { kind: 'normal'; std: number } | { kind: 'nearOne'; spread: number } | { kind: 'copy'; of: string };

/**
 * Initial values chosen so activations stay O(1) through all blocks: linear weights ~ N(0, 1/in)
 * (halved on residual outputs), norms 1 ± 0.1, small biases. Embeddings are small compared with the
 * block outputs, so an lm_head that copies the embedding (as Molmo2-4B's does) does not simply
 * predict the last input token again and greedy decoding varies. Molmo2-8B's lm_head is its own
 * (Qwen3-8B's is untied): `ownLmHead` gives it values of its own, so a converter that read the
 * embedding in its place would be caught.
 */
function initFor(name: string, shape: number[], ownLmHead = false): Init {
  if (name === names.lmHead) return ownLmHead ? { kind: 'normal', std: 0.2 } : { kind: 'copy', of: names.embedding };
  if (name.endsWith('norm.weight') || name === names.finalNorm) return { kind: 'nearOne', spread: 0.1 };
  if (name.endsWith('.bias')) return { kind: 'normal', std: 0.02 };
  // The ViT's table (Molmo2's or MolmoPoint's name).
  if (name.endsWith('.positional_embedding')) return { kind: 'normal', std: 0.5 };
  if (name === names.embedding || name === names.newEmbedding) return { kind: 'normal', std: 0.2 };
  const fanIn = shape[shape.length - 1];
  let gain = 1;
  if (/\.(attention\.wo|feed_forward\.w2|attn_out|ff_out)\.weight$/.test(name)) gain = 0.5;
  // Pooling reads unnormalised ViT features (RMS grows over 25 residual blocks): keep q·k moderate.
  if (/image_pooling_2d\.w[qk]\./.test(name)) gain = 0.25;
  return { kind: 'normal', std: gain / Math.sqrt(fanIn) };
}

const CHUNK_FLOATS = 1 << 20;

/** float32 values of one tensor in chunks; the stream depends only on (seed, name). */
function* randomTensorChunks(seed: number, t: TensorPlan, ownLmHead: boolean): Iterable<Uint8Array> {
  const own = initFor(t.name, t.shape, ownLmHead);
  // A copy regenerates the source tensor's stream (same seed, same name) instead of reading it back.
  const stream = own.kind === 'copy' ? own.of : t.name;
  const init = own.kind === 'copy' ? initFor(own.of, t.shape) : own;
  if (init.kind === 'copy') throw new Error(`tensor ${t.name}: copy of a copy`);
  const rng = new Rng(seed, stream);
  const buf = new Float32Array(CHUNK_FLOATS);
  let left = t.shape.reduce((a, b) => a * b, 1);
  while (left > 0) {
    const n = Math.min(left, CHUNK_FLOATS);
    if (init.kind === 'normal') for (let i = 0; i < n; i++) buf[i] = rng.normal() * init.std;
    else for (let i = 0; i < n; i++) buf[i] = 1 + (rng.uniform() * 2 - 1) * init.spread;
    left -= n;
    // The writer awaits each chunk before asking for the next, so the buffer can be reused.
    yield new Uint8Array(buf.buffer, 0, n * 4);
  }
}

/** The same values rounded to BF16 (round to nearest, ties to even; the values are finite). */
function* toBf16Chunks(chunks: Iterable<Uint8Array>): Iterable<Uint8Array> {
  const out = new Uint16Array(CHUNK_FLOATS);
  for (const c of chunks) {
    const bits = new Uint32Array(c.buffer, c.byteOffset, c.byteLength / 4);
    if (bits.length > out.length) throw new Error('chunk larger than the BF16 buffer');
    for (let i = 0; i < bits.length; i++) {
      const b = bits[i];
      out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
    }
    yield new Uint8Array(out.buffer, 0, bits.length * 2);
  }
}

/** Splits tensors (in order) into `count` shards of roughly equal byte size, none empty. */
function splitIntoShards(tensors: TensorPlan[], count: number): TensorPlan[][] {
  const total = tensors.reduce((s, t) => s + byteLength(t), 0);
  const shards: TensorPlan[][] = Array.from({ length: count }, () => []);
  let acc = 0;
  tensors.forEach((t, i) => {
    const remainingTensors = tensors.length - i;
    let k = Math.min(count - 1, Math.floor((acc / total) * count));
    // Leave at least one tensor for every later shard.
    k = Math.max(k, count - remainingTensors);
    shards[k].push(t);
    acc += byteLength(t);
  });
  return shards.filter((s) => s.length > 0);
}

const SHARD_TARGET_BYTES = 2 * 1024 ** 3;

/** transformers' default max_shard_size ("5GB"): a shard is closed before a tensor would take it past this. */
const FULL_SIZE_SHARD_MAX_BYTES = 5e9;

/** Tensors in order, each shard filled up to `maxBytes` (as transformers' save_pretrained shards). */
export function packIntoShards(tensors: TensorPlan[], maxBytes: number): TensorPlan[][] {
  const shards: TensorPlan[][] = [[]];
  let acc = 0;
  for (const t of tensors) {
    const n = byteLength(t);
    if (n > maxBytes) throw new Error(`tensor ${t.name} (${n} bytes) is larger than a shard (${maxBytes} bytes)`);
    if (acc + n > maxBytes) {
      shards.push([]);
      acc = 0;
    }
    shards.at(-1)!.push(t);
    acc += n;
  }
  return shards;
}

export interface TinyCheckpointOptions {
  outDir: string;
  seed?: number;
  size?: CheckpointSize;
  /**
   * The published checkpoint whose config keys and values the scaled sizes keep (default 4b; a full
   * size is its own family). 8b and o-7b also give lm_head values of their own.
   */
  family?: Family;
  /** Decoder layers, instead of the size's own (bench:dispatch compares two depths). */
  textLayers?: number;
  log?: (msg: string) => void;
}

export interface TinyCheckpoint {
  outDir: string;
  config: Molmo2Config;
  /** Files written, relative to outDir. */
  files: string[];
  parameters: number;
  /** Bytes of tensor data (the index's total_size). */
  totalSize: number;
}

export async function makeTinyCheckpoint(opts: TinyCheckpointOptions): Promise<TinyCheckpoint> {
  const size = opts.size ?? 'tiny';
  const seed = opts.seed ?? 0;
  const full = isFullSize(size);
  const family = opts.family ?? (full ? size : '4b');
  if (!FAMILIES.includes(family)) throw new Error(`unknown family "${family}" (choose ${FAMILIES.join(', ')})`);
  if (full && family !== size) throw new Error(`size ${size} is the published ${size} config whole; it cannot take family ${family}`);
  if (!full && !WIDTHS[size]) throw new Error(`unknown checkpoint size "${size}" (choose ${CHECKPOINT_SIZES.join(', ')})`);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`seed must be a non-negative integer, got ${seed}`);
  const log = opts.log ?? (() => {});
  await mkdir(opts.outDir, { recursive: true });

  const configJson = full ? await publishedConfigJson(size) : await scaledConfigJson(size, family);
  if (opts.textLayers !== undefined) {
    const text = configJson.text_config as Record<string, unknown>;
    text.num_hidden_layers = opts.textLayers;
    if (Array.isArray(text.rope_scaling_layers)) text.rope_scaling_layers = scaledRopeLayers(opts.textLayers);
  }
  // O-7B has OLMo-3's tokenizer and ids (generated: olmo-tokenizer.ts); MolmoPoint Molmo2-4B's with
  // its grounding tokens and processor switch (molmopoint-tokenizer.ts); the others Molmo2-4B's files.
  const olmo = family === 'o-7b' ? await olmoTokenizerFiles() : null;
  const point = family === 'molmopoint' ? { ...(await molmoPointTokenizerFiles(await buildTokenizerJson())), 'processor_config.json': await molmoPointProcessorConfig() } : null;
  const generationJson = olmo ? olmo['generation_config.json'] : await readAssetJson('generation_config.json');
  const check = parseMolmo2Config(configJson, generationJson);
  if (!check.config) throw new Error(`${full ? 'full-size' : 'scaled'} config is invalid: ${[...check.missing, ...check.errors].join('; ')}`);
  const config = check.config;

  const files: string[] = [];
  const put = async (file: string, text: string) => {
    await writeFile(join(opts.outDir, file), text);
    files.push(file);
  };
  await put('config.json', `${JSON.stringify(configJson, null, 2)}\n`);
  for (const file of VERBATIM_CONFIG_FILES) {
    const own = olmo?.[file as keyof OlmoTokenizerFiles] ?? point?.[file as keyof typeof point];
    if (own) await put(file, `${JSON.stringify(own, null, 2)}\n`);
    else {
      await copyFile(join(MOLMO2_4B_ASSETS, file), join(opts.outDir, file));
      files.push(file);
    }
  }
  await put('tokenizer.json', JSON.stringify(olmo?.['tokenizer.json'] ?? point?.['tokenizer.json'] ?? (await buildTokenizerJson())));

  const dtype = full ? 'BF16' : 'F32';
  const tensors: TensorPlan[] = [...expectedTensors(config)].map(([name, shape]) => ({ name, dtype, shape }));
  const totalSize = tensors.reduce((s, t) => s + byteLength(t), 0);
  const parameters = totalSize / (full ? 2 : 4);
  const shards = full
    ? packIntoShards(tensors, FULL_SIZE_SHARD_MAX_BYTES)
    : splitIntoShards(tensors, Math.max(2, Math.ceil(totalSize / SHARD_TARGET_BYTES)));
  const ownLmHead = family === '8b' || family === 'o-7b'; // untied in both (Qwen3-8B; OLMo-3: weight_tying False)
  const chunks = (t: TensorPlan) => (full ? toBf16Chunks(randomTensorChunks(seed, t, ownLmHead)) : randomTensorChunks(seed, t, ownLmHead));
  const weightMap: Record<string, string> = {};
  for (let i = 0; i < shards.length; i++) {
    const file = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
    log(`writing ${file} (${shards[i].length} tensors)`);
    await writeSafetensorsStreaming(join(opts.outDir, file), shards[i], chunks);
    for (const t of shards[i]) weightMap[t.name] = file;
    files.push(file);
  }
  const sortedMap = Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]]));
  const index = {
    metadata: { total_parameters: parameters, total_size: totalSize, [RANDOM_WEIGHTS_KEY]: true, random_seed: seed, random_size: size, random_family: family },
    weight_map: sortedMap,
  };
  await put('model.safetensors.index.json', `${JSON.stringify(index, null, 2)}\n`);
  return { outDir: opts.outDir, config, files, parameters, totalSize };
}
