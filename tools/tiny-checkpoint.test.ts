import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { parseMolmo2Config, parseProcessorSettings } from '../src/molmo2/config.ts';
import { expectedTensors, names, pointNames } from '../src/molmo2/tensors.ts';
import { Molmo2Tokenizer } from '../src/molmo2/tokenizer.ts';
import { planConversion } from './lib/converter.ts';
import { N_POINT_TOKENS } from './lib/molmopoint-tokenizer.ts';
import { parseHeader, toFloat32 } from '../src/molmo2/safetensors.ts';
import { MOLMO2_4B_ASSETS } from './lib/assets.ts';
import { MOLMOPOINT_VALUES, publishedConfigJson, sameAsSibling } from './lib/published-configs.ts';
import { isRandomWeightsIndex, makeTinyCheckpoint, scaledRopeLayers, WIDTHS, type TinyCheckpoint } from './lib/tiny-checkpoint.ts';

const SHARED_4B = join(import.meta.dirname, '..', '..', 'shared', 'reference', 'molmo2-4b');
const REAL_DIR = existsSync(SHARED_4B) ? SHARED_4B : MOLMO2_4B_ASSETS;

const readJson = async (dir: string, file: string) => JSON.parse(await readFile(join(dir, file), 'utf8'));

/** Dotted paths of every leaf key. */
function keyPaths(json: unknown, prefix = ''): string[] {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return [prefix];
  return Object.entries(json as Record<string, unknown>).flatMap(([k, v]) => keyPaths(v, prefix ? `${prefix}.${k}` : k));
}

async function shardHeaders(dir: string) {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.safetensors')).sort();
  const out = [];
  for (const f of files) {
    const bytes = new Uint8Array(await readFile(join(dir, f)));
    out.push({ file: f, bytes, header: parseHeader(bytes, bytes.byteLength) });
  }
  return out;
}

function readTensor(shards: Awaited<ReturnType<typeof shardHeaders>>, name: string): Float32Array {
  for (const s of shards) {
    const info = s.header.tensors.get(name);
    if (info) return toFloat32(s.bytes.subarray(s.header.dataStart + info.begin, s.header.dataStart + info.end), info.dtype);
  }
  throw new Error(`tensor ${name} not found`);
}

describe('makeTinyCheckpoint', () => {
  let root: string;
  let ck: TinyCheckpoint;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'tiny-ck-'));
    ck = await makeTinyCheckpoint({ outDir: join(root, 'a'), seed: 7 });
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('writes the same file set as the published checkpoint, with at least two shards', async () => {
    const written = await readdir(ck.outDir);
    const real = ['config.json', 'generation_config.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json', 'chat_template.jinja', 'preprocessor_config.json', 'processor_config.json', 'video_preprocessor_config.json', 'model.safetensors.index.json', 'tokenizer.json'];
    for (const f of real) expect(written).toContain(f);
    const shards = written.filter((f) => f.endsWith('.safetensors')).sort();
    expect(shards.length).toBeGreaterThanOrEqual(2);
    shards.forEach((f, i) => expect(f).toBe(`model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`));
    expect([...written].sort()).toEqual([...ck.files].sort());
  });

  it.skipIf(!existsSync(SHARED_4B))('bundles byte-identical copies of the published files it uses', async () => {
    for (const f of await readdir(MOLMO2_4B_ASSETS)) {
      if (f === 'SOURCES.md') continue;
      expect(Buffer.compare(await readFile(join(MOLMO2_4B_ASSETS, f)), await readFile(join(SHARED_4B, f))), f).toBe(0);
    }
  });

  it('has every config key of the published Molmo2-4B config, and parseMolmo2Config accepts it', async () => {
    const mine = await readJson(ck.outDir, 'config.json');
    const real = await readJson(REAL_DIR, 'config.json');
    expect(keyPaths(mine).sort()).toEqual(keyPaths(real).sort());
    const check = parseMolmo2Config(mine, await readJson(ck.outDir, 'generation_config.json'));
    expect(check.missing).toEqual([]);
    expect(check.errors).toEqual([]);
    const c = check.config!;
    const w = WIDTHS.tiny;
    expect(c.vit.hiddenSize).toBe(w.vit.hidden);
    expect(c.text.numHeads * c.text.headDim).not.toBe(c.text.hiddenSize);
    expect(c.adapter.hiddenSize).not.toBe(c.vit.hiddenSize);
    expect(c.adapter.intermediateSize).not.toBe(c.text.intermediateSize);
    expect(c.vitBlocksUsed).toBe(25);
    expect(c.vit.patchSize).toBe(14);
    expect(c.vit.imageSize).toEqual([378, 378]);
    expect(c.text.vocabSize).toBe(151936);
    expect(c.text.ropeTheta).toBe(real.text_config.rope_theta);
    // Non-width fields keep the published values.
    expect(mine.image_patch_id).toBe(real.image_patch_id);
    expect(mine.vit_config.num_hidden_layers).toBe(real.vit_config.num_hidden_layers);
  });

  it('holds exactly the tensors of expectedTensors(config), listed in the index, with matching shapes', async () => {
    const index = await readJson(ck.outDir, 'model.safetensors.index.json');
    const expected = expectedTensors(ck.config);
    const shards = await shardHeaders(ck.outDir);
    const inHeaders = new Map<string, number[]>();
    for (const s of shards) {
      for (const [name, info] of s.header.tensors) {
        expect(info.dtype).toBe('F32');
        expect(index.weight_map[name]).toBe(s.file);
        inHeaders.set(name, info.shape);
      }
    }
    expect(Object.keys(index.weight_map).sort()).toEqual([...expected.keys()].sort());
    expect([...inHeaders.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [name, shape] of expected) expect(inHeaders.get(name), name).toEqual(shape);
    const params = [...expected.values()].reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1), 0);
    expect(index.metadata.total_parameters).toBe(params);
    expect(index.metadata.total_size).toBe(params * 4);
    expect(isRandomWeightsIndex(index)).toBe(true);
    expect(isRandomWeightsIndex(await readJson(REAL_DIR, 'model.safetensors.index.json'))).toBe(false);
  });

  it('initialises weights sensibly: tied lm_head, norms near one, finite and non-degenerate values', async () => {
    const shards = await shardHeaders(ck.outDir);
    const emb = readTensor(shards, names.embedding);
    const head = readTensor(shards, names.lmHead);
    const bytesOf = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    expect(head.length).toBe(emb.length);
    expect(bytesOf(head).equals(bytesOf(emb))).toBe(true);
    const fresh = readTensor(shards, names.newEmbedding);
    expect(bytesOf(fresh).equals(bytesOf(emb.subarray(0, fresh.length)))).toBe(false);
    for (const n of [`${names.block(0)}.attn_norm.weight`, `${names.block(2)}.self_attn.k_norm.weight`, names.finalNorm, `${names.vitBlock(18)}.ffn_norm.weight`]) {
      const norm = readTensor(shards, n);
      for (const v of norm) expect(Math.abs(v - 1), n).toBeLessThanOrEqual(0.1);
      expect(new Set(norm).size, n).toBe(norm.length);
    }
    const w = readTensor(shards, `${names.block(1)}.mlp.ff_proj.weight`);
    const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
    expect(std).toBeGreaterThan(0.5 / Math.sqrt(ck.config.text.hiddenSize));
    expect(std).toBeLessThan(2 / Math.sqrt(ck.config.text.hiddenSize));
    expect(w.every(Number.isFinite)).toBe(true);
    const bias = readTensor(shards, `${names.vitBlock(24)}.attention.wq.bias`);
    expect(bias.some((v) => v !== 0)).toBe(true);
    expect(Math.max(...bias.map(Math.abs))).toBeLessThan(0.2);
  });

  it('is deterministic for a seed and differs between seeds', async () => {
    const again = await makeTinyCheckpoint({ outDir: join(root, 'b'), seed: 7 });
    const other = await makeTinyCheckpoint({ outDir: join(root, 'c'), seed: 8 });
    const digest = async (dir: string) => {
      const out: Record<string, string> = {};
      for (const f of (await readdir(dir)).sort()) out[f] = createHash('sha256').update(await readFile(join(dir, f))).digest('hex');
      return out;
    };
    const [a, b, c] = await Promise.all([digest(ck.outDir), digest(again.outDir), digest(other.outDir)]);
    expect(b).toEqual(a);
    const shard = 'model-00001-of-00002.safetensors';
    expect(c[shard]).not.toBe(a[shard]);
    expect(c['config.json']).toBe(a['config.json']);
  });

  it('writes a tokenizer that maps Molmo2 tokens to their published ids and round-trips text', async () => {
    const tokenizer = new Tokenizer(await readJson(ck.outDir, 'tokenizer.json'), await readJson(ck.outDir, 'tokenizer_config.json'));
    const added: Record<string, number> = await readJson(REAL_DIR, 'added_tokens.json');
    expect(Object.keys(added).length).toBe(303);
    for (const [token, id] of Object.entries(added)) expect(tokenizer.token_to_id(token), token).toBe(id);
    const config = await readJson(ck.outDir, 'config.json');
    expect(tokenizer.encode('<im_patch>').ids).toEqual([config.image_patch_id]);
    const prompt = '<|im_end|><low_res_im_start><im_patch><im_patch><im_end>0.5 <im_start><im_patch><im_col><im_end><|im_start|>user\nPoint to the cups.<|im_end|>\n<|im_start|>assistant\n';
    const ids = tokenizer.encode(prompt).ids;
    expect(ids.slice(0, 5)).toEqual([151645, 151940, 151938, 151938, 151937]);
    expect(ids).toContain(151644);
    expect(ids).toContain(151939);
    expect(tokenizer.decode(ids, { skip_special_tokens: false })).toBe(prompt);
    const text = 'Ünïcode café, 数字 12345 and <points coords="1 1 412 308">boats</points>';
    const textIds = tokenizer.encode(text).ids;
    expect(textIds.every((id) => id < 151643)).toBe(true);
    expect(tokenizer.decode(textIds)).toBe(text);
  });
});

describe('tiny checkpoints of the other published Molmo2 configs (make-tiny --family)', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'tiny-family-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('8b: the tiny widths with Molmo2-8B\'s other values (rope_theta 1e6) and an lm_head of its own', async () => {
    const ck = await makeTinyCheckpoint({ outDir: join(root, '8b'), seed: 7, family: '8b' });
    const config = await readJson(ck.outDir, 'config.json');
    const published = await publishedConfigJson('8b');
    expect(keyPaths(config).sort()).toEqual(keyPaths(published).sort());
    expect(config.text_config).toMatchObject({ rope_theta: 1e6, hidden_size: WIDTHS.tiny.text.hidden, num_hidden_layers: WIDTHS.tiny.text.layers });
    expect(config.tie_word_embeddings).toBe(false);
    expect(ck.config.text.ropeTheta).toBe(1e6);
    const shards = await shardHeaders(ck.outDir);
    const emb = readTensor(shards, names.embedding);
    const head = readTensor(shards, names.lmHead);
    expect(head.length).toBe(emb.length);
    let apart = 0;
    for (let i = 0; i < head.length; i++) apart = Math.max(apart, Math.abs(head[i] - emb[i]));
    expect(apart).toBeGreaterThan(0.1);
    const std = Math.sqrt(head.reduce((sum, v) => sum + v * v, 0) / head.length);
    expect(std).toBeGreaterThan(0.1);
    expect(std).toBeLessThan(0.4);
    const index = await readJson(ck.outDir, 'model.safetensors.index.json');
    expect(index.metadata).toMatchObject({ random_family: '8b', random_size: 'tiny' });
  });

  it('videopoint-4b: its partial config filled from Molmo2-4B, which every seen value equals', async () => {
    const filled = await publishedConfigJson('videopoint-4b');
    expect(filled).toEqual(await publishedConfigJson('4b'));
    const ck = await makeTinyCheckpoint({ outDir: join(root, 'vp'), seed: 7, family: 'videopoint-4b' });
    expect(ck.config.text.ropeTheta).toBe(5e6);
    expect((await readJson(ck.outDir, 'model.safetensors.index.json')).metadata.random_family).toBe('videopoint-4b');
  });

  it('o-7b: OLMo-3 decoder values and ids, YaRN on the scaled last layer of each four, OLMo tokenizer files that agree with each other', async () => {
    const published = await publishedConfigJson('o-7b');
    // The keys of Molmo2-4B's config.json, rope_scaling an object instead of null.
    const keys = [...new Set(keyPaths(published).map((p) => p.replace(/^text_config\.rope_scaling\..*/, 'text_config.rope_scaling')))];
    expect(keys.sort()).toEqual(keyPaths(await publishedConfigJson('4b')).sort());
    expect(published.text_config).toMatchObject({ norm_after: true, qk_norm_type: 'olmo', num_key_value_heads: 32, vocab_size: 100278, rope_scaling_layers: [3, 7, 11, 15, 19, 23, 27, 31] });
    expect(scaledRopeLayers(32)).toEqual([3, 7, 11, 15, 19, 23, 27, 31]);
    expect(scaledRopeLayers(3)).toEqual([2]);
    expect(scaledRopeLayers(9)).toEqual([3, 7, 8]);

    const ck = await makeTinyCheckpoint({ outDir: join(root, 'o7b'), seed: 7, family: 'o-7b' });
    expect(ck.config.text).toMatchObject({ numHeads: WIDTHS.tiny.text.heads, numKvHeads: WIDTHS.tiny.text.heads, ropeScalingLayers: [2], normAfter: true });
    const shards = await shardHeaders(ck.outDir);
    expect(readTensor(shards, `${names.block(0)}.self_attn.q_norm.weight`).length).toBe(WIDTHS.tiny.text.heads * WIDTHS.tiny.text.headDim);
    const tokenizerJson = await readJson(ck.outDir, 'tokenizer.json');
    const tokenizerConfig = await readJson(ck.outDir, 'tokenizer_config.json');
    const generation = await readJson(ck.outDir, 'generation_config.json');
    expect(generation).toMatchObject({ bos_token_id: 100265, eos_token_id: 100265, pad_token_id: 100277 });
    // Every added token sits at the same id in tokenizer.json, tokenizer_config.json and added_tokens.json.
    const added = (tokenizerJson.added_tokens as { id: number; content: string }[]).map((t) => [t.content, t.id]);
    expect(Object.fromEntries(added)).toEqual(await readJson(ck.outDir, 'added_tokens.json'));
    expect(Object.entries(tokenizerConfig.added_tokens_decoder as Record<string, { content: string }>).map(([id, t]) => [t.content, Number(id)])).toEqual(added);
    // Molmo2's tokens are where config.json says they are.
    const tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
    const t = ck.config.tokens;
    expect(['<im_start>', '<im_end>', '<im_patch>', '<im_col>', '<low_res_im_start>', '<im_low>', '<frame_start>', '<frame_end>'].map((s) => tokenizer.token_to_id(s))).toEqual([t.imageStart, t.imageEnd, t.imagePatch, t.imageCol, t.lowResImageStart, t.imageLowRes, t.frameStart, t.frameEnd]);
    expect(tokenizer.encode('<|im_start|>user\nHi<|im_end|>', { add_special_tokens: false }).ids).toEqual([100264, ...tokenizer.encode('user\nHi', { add_special_tokens: false }).ids, 100265]);
    expect((await readJson(ck.outDir, 'model.safetensors.index.json')).metadata.random_family).toBe('o-7b');
  });

  it("molmopoint: Molmo2-4B's config with MolmoPoint's keys, its tensor table with every width different, the <POINT_k> tokens, and a converter that refuses it", async () => {
    const published = await publishedConfigJson('molmopoint');
    // Every key is Molmo2-4B's or one MOLMOPOINT_VALUES names; image_low_res_id is gone.
    const fourB = keyPaths(await publishedConfigJson('4b'));
    const added = new Set(MOLMOPOINT_VALUES.map((v) => v.path));
    expect(keyPaths(published).filter((k) => !fourB.includes(k) && ![...added].some((a) => k === a || k.startsWith(`${a}.`)))).toEqual([]);
    expect(fourB.filter((k) => !keyPaths(published).includes(k))).toEqual(['image_low_res_id']);
    for (const v of MOLMOPOINT_VALUES) expect(v.source.length, v.path).toBeGreaterThan(20);
    expect(published).toMatchObject({ model_type: 'molmo_point', low_res_image_start_token_id: null, patch_embed_dim: 512, text_config: { tie_word_embeddings: true, hidden_size: 2560 } });

    const ck = await makeTinyCheckpoint({ outDir: join(root, 'point'), seed: 7, family: 'molmopoint' });
    const c = ck.config;
    expect(c.point).toMatchObject({ patchTokenId: 151947, subpatchTokenId: 151948, locationTokenId: 151949, nonIndexablePatchId: 151942, patchEmbedDim: WIDTHS.tiny.pointEmbedDim, tiedLmHead: true, poolingPositions: 0, poolingOutLayer: false });
    expect(c.tokens).toMatchObject({ lowResImageStart: 151940, imageLowRes: 151942 });
    // Every configured width of the tiny MolmoPoint differs, the point head's included (the tiny
    // Molmo2 widths already make the concatenated ViT width 2·32 equal the query width 4·16).
    const widths = [c.vit.hiddenSize, c.vit.intermediateSize, c.adapter.hiddenSize, c.adapter.intermediateSize, c.text.hiddenSize, c.text.numHeads * c.text.headDim, c.text.intermediateSize, c.point!.patchEmbedDim, 9];
    expect(new Set(widths).size).toBe(widths.length);

    // The shards hold exactly the table: model.vit / model.connector / point head, no lm_head (tied).
    const expected = expectedTensors(c);
    const inHeaders = new Map<string, number[]>();
    for (const s of await shardHeaders(ck.outDir)) for (const [name, info] of s.header.tensors) inHeaders.set(name, info.shape);
    expect([...inHeaders.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [name, shape] of expected) expect(inHeaders.get(name), name).toEqual(shape);
    const tensorNames = [...inHeaders.keys()];
    expect(tensorNames.filter((n) => n.startsWith('model.vision_backbone') || n.startsWith('lm_head'))).toEqual([]);
    for (const n of [`${pointNames.patchQ}.weight`, `${pointNames.subpatchK}.weight`, pointNames.noMorePoints, `${pointNames.locationK}.bias`, pointNames.xNorm, `${pointNames.vitEmbedding}.weight`, 'model.vit.transformer.resblocks.24.ffn_norm.weight', 'model.connector.image_projector.w2.weight']) {
      expect(tensorNames, n).toContain(n);
    }

    // Tokenizer: MolmoPoint's specials where config.json says, the grounding tokens from vocab + 128.
    const tokenizerJson = await readJson(ck.outDir, 'tokenizer.json');
    const tokenizerConfig = await readJson(ck.outDir, 'tokenizer_config.json');
    const tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
    expect(['<|token_index|>', '<|vit_index|>', '<|vit_loc|>', '<im_low>', '<low_res_im_start>'].map((t) => tokenizer.token_to_id(t))).toEqual([151947, 151948, 151949, 151942, 151940]);
    const first = c.text.vocabSize + c.text.additionalVocabSize;
    expect(tokenizer.token_to_id('<POINT_0>')).toBe(first);
    expect(tokenizer.token_to_id(`<POINT_${N_POINT_TOKENS - 1}>`)).toBe(first + N_POINT_TOKENS - 1);
    expect(tokenizer.token_to_id('<EXTRA_TOKENS_POINT_0>')).toBe(151950);
    expect(Object.keys(await readJson(ck.outDir, 'added_tokens.json')).length).toBe(303 + 4 + 114 + N_POINT_TOKENS);
    // Grounding tokens are plain tokens: an answer's text keeps them, and the point regex reads it.
    const mine = new Molmo2Tokenizer(tokenizerJson, tokenizerConfig);
    const text = mine.decode([first + 200, first + 393, first + 399, ...mine.encode('1'), 151645]);
    expect(text).toBe('<POINT_200><POINT_393><POINT_399>1');
    expect(mine.encode('<POINT_7> <POINT_8>')).toEqual([first + 7, ...mine.encode(' '), first + 8]);

    // MolmoPoint's processor writes the global view as <im_low>.
    const settings = parseProcessorSettings({ processor: await readJson(ck.outDir, 'processor_config.json') });
    expect(settings).toMatchObject({ useLowResTokenForGlobalCrops: true, useFrameSpecialTokens: true });

    // Until its head has graphs the converter refuses it, naming why.
    await expect(planConversion({ source: ck.outDir, dryRun: true })).rejects.toThrow(/MolmoPoint checkpoints \(grounding-token head\) are not supported by the converter yet/);
  });

  it('refuses to fill a partial config from a sibling it does not match, naming the value', () => {
    const base = { text_config: { hidden_size: 2560, rope_theta: 5e6 }, tie_word_embeddings: false };
    expect(sameAsSibling({ text_config: { hidden_size: 2560, rope_theta: '__MISSING__' }, tie_word_embeddings: '__MISSING__' }, base, 'X')).toEqual(base);
    expect(() => sameAsSibling({ text_config: { hidden_size: 4096, rope_theta: '__MISSING__' } }, base, 'X')).toThrow(/X config: text_config\.hidden_size is 4096, not Molmo2-4B's 2560/);
  });

  it('refuses a family that does not go with a full size', async () => {
    await expect(makeTinyCheckpoint({ outDir: join(root, 'bad'), size: '4b', family: '8b' })).rejects.toThrow(/size 4b .* cannot take family 8b/);
  });
});
