// MolmoPoint's reference on a tiny random checkpoint (testing.ts tinyPointConfigJson: every width
// different, 9 pooling position rows, no pooling wo, untied lm head). Each rule of the remote code
// (modeling_molmo_point.py) is checked against a value computed here by hand in doubles, or by a
// scenario whose outcome a wrong rule would change.
import { beforeAll, describe, expect, it } from 'vitest';
import { RELEASED_PROCESSOR_SETTINGS, type Molmo2Config } from '../config.ts';
import { imagePatchMap, imagePixelValues, planImage, type ImagePlan } from '../image.ts';
import { extractImagePoints, pointTokenBounds } from '../molmopoint/points.ts';
import { buildPrompt, type BuiltPrompt } from '../prompt.ts';
import { names, pointNames } from '../tensors.ts';
import { embed, loadDecoderWeights } from './decoder.ts';
import { molmo2ChatTemplate } from './molmo2-4b-chat-template.ts';
import { composeLogits, groundingText, MolmoPointReference, type PointImages, type PointSession } from './molmopoint.ts';
import { ReferenceModel } from './model.ts';
import { argmax, silu } from './ops.ts';
import { buildPointKeys, loadPointHeadWeights, locationLogits, patchLogits, POINT_SMALL, pointInput, subpatchLogits, type PointHeadWeights } from './point-head.ts';
import { MemoryTensors, randomTensors, testPicture, tinyConfig, tinyPointConfigJson, tinyTokenizer } from './testing.ts';
import { loadVisionWeights, poolAndProject, vitFeatures, type VisionWeights } from './vision.ts';
import { Weights } from './weights.ts';

const config = tinyConfig(tinyPointConfigJson());
const point = config.point!;
const d = config.text.hiddenSize; // 36
const E = point.patchEmbedDim; // 14
const VIT = config.vit.hiddenSize * config.adapter.vitLayers.length; // 48
const V = config.text.vocabSize; // 320; grounding ids from 320 + 128

// ---- hand arithmetic in doubles ----
const dense = (x: ArrayLike<number>, w: Float32Array, b: Float32Array | null, out: number): number[] =>
  Array.from({ length: out }, (_, o) => {
    let s = b ? b[o] : 0;
    for (let i = 0; i < x.length; i++) s += x[i] * w[o * x.length + i];
    return s;
  });
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, v, i) => s + v * b[i], 0);
const rms = (x: ArrayLike<number>, w: Float32Array, eps: number) => {
  const inv = 1 / Math.sqrt(Array.from(x).reduce((s, v) => s + v * v, 0) / x.length + eps);
  return Array.from(x, (v, i) => v * inv * w[i]);
};
/** MolmoPointPatchRope: rotate-half with θ^(2i/E) frequencies. */
const rotate = (v: ArrayLike<number>, pos: number) => {
  const half = v.length / 2;
  const out = Array.from(v);
  for (let i = 0; i < half; i++) {
    const a = pos / point.rotaryTheta ** ((2 * i) / v.length);
    out[i] = v[i] * Math.cos(a) - v[i + half] * Math.sin(a);
    out[i + half] = v[i + half] * Math.cos(a) + v[i] * Math.sin(a);
  }
  return out;
};
const row = (x: ArrayLike<number>, i: number, width: number) => Array.from(x).slice(i * width, (i + 1) * width);
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  return Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
};
const scaleOf = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/**
 * Random weights in which points get written: every embedding row and the subpatch embedding carry
 * one shared direction, so each state has it and the patch token's output row (aligned with it)
 * scores high at every step; the no-more-points key is zero, so a patch beats it.
 */
async function pointingTensors(seed: number): Promise<MemoryTensors> {
  const shift = Float32Array.from({ length: d }, (_, i) => (i % 2 ? 3 : -3));
  const addShift = (data: Float32Array) => data.forEach((_, i) => (data[i] += shift[i % d]));
  let t = randomTensors(config, seed).with(names.embedding, addShift).with(names.newEmbedding, addShift).with(`${pointNames.vitEmbedding}.bias`, addShift);
  const lnF = await t.read(names.finalNorm);
  t = t.with(pointNames.lmHeadNew, (data) => {
    for (let i = 0; i < d; i++) data[(point.patchTokenId - V) * d + i] = lnF[i] * Math.sign(shift[i]);
  });
  return t.with(pointNames.noMorePoints, (data) => data.fill(0));
}

const settings = { ...RELEASED_PROCESSOR_SETTINGS, useLowResTokenForGlobalCrops: true };
let tensors: MemoryTensors;
let model: MolmoPointReference;
let plan: ImagePlan;
let prompt: BuiltPrompt;
let images: PointImages;
/** The ViT rows of the prompt's crops, from the vision module directly (not through the model). */
let vit: Float32Array;
let vision: VisionWeights;
let head: PointHeadWeights;

beforeAll(async () => {
  tensors = await pointingTensors(11);
  model = await MolmoPointReference.load(config, tensors);
  plan = planImage(200, 100); // global 14×14 (<im_low>) + one crop 14×14 (<im_patch>): 392 image tokens
  prompt = buildPrompt({ tokenizer: tinyTokenizer, chatTemplate: molmo2ChatTemplate(), tokens: config.tokens, visual: { kind: 'images', plans: [plan] }, conversation: { question: 'Point to the boats.' }, settings });
  const pixels = imagePixelValues(testPicture(200, 100, 3), 200, 100);
  images = model.encodeImages(pixels, prompt.numCrops, prompt.pooledIdx, prompt.poolSize);
  const w = new Weights(config, tensors);
  vision = await loadVisionWeights(config, w);
  head = await loadPointHeadWeights(config, w);
  vit = vitFeatures(config, vision, pixels, prompt.numCrops);
});

const P = 4;
const GLOBAL_ROWS = 196;
/** A global-view row whose 2×2 window is padded (the 27-patch grid does not split in two). */
const paddedRow = () => {
  for (let t = 0; t < GLOBAL_ROWS; t++) if (prompt.pooledIdx.subarray(t * P, (t + 1) * P).some((i) => i < 0)) return t;
  throw new Error('no padded window');
};
const freshSession = (): PointSession => model.prefill(prompt.inputIds, prompt.tokenTypeIds, images).session;

describe('MolmoPoint connector', () => {
  it('adds the position rows to the whole window before the mean over valid slots; padded slots stay out of the attention; no wo', async () => {
    const t = paddedRow();
    const pos = await tensors.read(pointNames.poolingPositions);
    const pool = (n: string) => tensors.read(`model.connector.image_pooling_2d.${n}`);
    const [wq, bq, wk, bk, wv, bv] = await Promise.all(['wq.weight', 'wq.bias', 'wk.weight', 'wk.bias', 'wv.weight', 'wv.bias'].map(pool));
    const proj = (n: string) => tensors.read(`model.connector.image_projector.${n}.weight`);
    const [w1, w2, w3] = await Promise.all(['w1', 'w2', 'w3'].map(proj));
    const idx = Array.from(prompt.pooledIdx.subarray(t * P, (t + 1) * P));
    const expected = (positionsOnPadded: boolean) => {
      const slots = idx.map((i, s) => Array.from({ length: VIT }, (_, k) => (i >= 0 ? vit[i * VIT + k] : 0) + (i >= 0 || positionsOnPadded ? pos[s * VIT + k] : 0)));
      const valid = idx.filter((i) => i >= 0).length;
      const query = Array.from({ length: VIT }, (_, k) => slots.reduce((s, x) => s + x[k], 0) / valid);
      const q = dense(query, wq, bq, 30);
      const keys = slots.map((x) => dense(x, wk, bk, 30));
      const values = slots.map((x) => dense(x, wv, bv, 30));
      const pooled: number[] = [];
      for (let h = 0; h < 3; h++) {
        const score = keys.map((k, s) => (idx[s] >= 0 ? dot(q.slice(h * 10, h * 10 + 10), k.slice(h * 10, h * 10 + 10)) / Math.sqrt(10) : -Infinity));
        const top = Math.max(...score);
        const e = score.map((x) => Math.exp(x - top));
        const total = e.reduce((a, b) => a + b, 0);
        for (let j = 0; j < 10; j++) pooled.push(values.reduce((s, v, sIdx) => s + (e[sIdx] / total) * v[h * 10 + j], 0));
      }
      const gate = dense(pooled, w1, null, 44);
      const up = dense(pooled, w3, null, 44);
      return dense(gate.map((g, i) => silu(g) * up[i]), w2, null, d);
    };
    const got = row(images.features0, t, d);
    const want = expected(true);
    expect(maxDiff(got, want) / scaleOf(want)).toBeLessThan(1e-5);
    // A padded slot's position row reaches the query's sum (pooling_attention_mask true): leaving it out is far off.
    expect(maxDiff(got, expected(false)) / scaleOf(want)).toBeGreaterThan(1e-3);
  });

  it("with pooling_attention_mask false a padded slot is zeroed after the position rows, so its row cannot reach the token's feature", () => {
    const t = paddedRow();
    const s = Array.from(prompt.pooledIdx.subarray(t * P, (t + 1) * P)).findIndex((i) => i < 0);
    const changed = { ...vision, poolPositions: vision.poolPositions!.map((v, k) => (Math.floor(k / VIT) === s ? v + 5 : v)) };
    const unmasked = tinyConfig({ ...tinyPointConfigJson(), adapter_config: { ...(tinyPointConfigJson().adapter_config as object), pooling_attention_mask: false } });
    const featureRow = (c: Molmo2Config, w: VisionWeights) => row(poolAndProject(c, w, vit, prompt.pooledIdx, P), t, d);
    expect(maxDiff(featureRow(unmasked, changed), featureRow(unmasked, vision))).toBe(0);
    expect(maxDiff(featureRow(config, changed), featureRow(config, vision))).toBeGreaterThan(1e-3);
    // A token whose slot s is valid sees the change either way.
    const full = GLOBAL_ROWS; // the first hi-res row: all four slots valid
    expect(maxDiff(row(poolAndProject(unmasked, changed, vit, prompt.pooledIdx, P), full, d), row(poolAndProject(unmasked, vision, vit, prompt.pooledIdx, P), full, d))).toBeGreaterThan(1e-3);
  });

  it('adds the features to <im_low> and <im_patch> tokens alike, in token order', async () => {
    const dec = await loadDecoderWeights(config, new Weights(config, tensors));
    const features = Float32Array.from({ length: 2 * d }, (_, i) => (i % 5) - 2);
    const x = embed(config, dec, [point.nonIndexablePatchId, 5, config.tokens.imagePatch], features);
    const newRow = async (id: number) => row(await tensors.read(names.newEmbedding), id - V, d);
    expect(maxDiff(row(x, 0, d), (await newRow(point.nonIndexablePatchId)).map((v, i) => v + features[i]))).toBeLessThan(1e-6);
    expect(maxDiff(row(x, 2, d), (await newRow(config.tokens.imagePatch)).map((v, i) => v + features[d + i]))).toBeLessThan(1e-6);
  });
});

describe('MolmoPoint point head', () => {
  // Seven tokens: text, two global-view tokens, pointable, text, two pointable → five image rows.
  const ids = [5, point.nonIndexablePatchId, point.nonIndexablePatchId, config.tokens.imagePatch, 7, config.tokens.imagePatch, config.tokens.imagePatch];
  const rows = 5;
  const pooled = Int32Array.from({ length: rows * P }, (_, i) => (i % P === 3 ? -1 : i));
  const hidden = Float32Array.from({ length: ids.length * d }, (_, i) => Math.sin(i * 1.7) * 2);
  const windows = Float32Array.from({ length: rows * P * VIT }, (_, i) => Math.cos(i * 0.3));
  const features0 = new Float32Array(rows * d);
  const keysOf = () => buildPointKeys(config, head, hidden, ids, { windows, features0, pooledIdx: pooled, P });
  const handKey = (position: number, at: number) => rotate(dense(rms(row(hidden, at, d), head.xNorm!, 1e-6), head.patchK.w, head.patchK.b, E), position);

  it('keys every image token in order, turned by its index among the pointable ones; masks the global view; appends the no-more-points key', () => {
    const keys = keysOf();
    expect(keys.nKeys).toBe(rows + 1);
    expect(Array.from(keys.patchKMask)).toEqual([0, 0, 1, 1, 1, 1]);
    // cumsum(is_indexable) − 1: the global view before any pointable token sits at −1.
    expect(Array.from(keys.imagePosIds)).toEqual([-1, -1, 0, 1, 2]);
    [1, 2, 3, 5, 6].forEach((at, r) => expect(maxDiff(row(keys.patchK, r, E), handKey(keys.imagePosIds[r], at)), `row ${r}`).toBeLessThan(1e-5));
    // The first pointable key is not turned at all (position 0); the next ones are.
    const plain = dense(rms(row(hidden, 3, d), head.xNorm!, 1e-6), head.patchK.w, head.patchK.b, E);
    expect(maxDiff(row(keys.patchK, 2, E), plain)).toBeLessThan(1e-5);
    expect(maxDiff(row(keys.patchK, 3, E), dense(rms(row(hidden, 5, d), head.xNorm!, 1e-6), head.patchK.w, head.patchK.b, E))).toBeGreaterThan(1e-3);
    expect(row(keys.patchK, rows, E)).toEqual(Array.from(head.noMorePoints));
  });

  it('scores patches q·k/√E, the query turned by the last patch generated (none: not turned), masked ones −1e8', () => {
    const keys = keysOf();
    const xHat = Float32Array.from({ length: d }, (_, i) => Math.cos(i));
    const q = dense(xHat, head.patchQ.w, head.patchQ.b, E);
    const hand = (query: number[]) => Array.from({ length: rows + 1 }, (_, j) => (keys.patchKMask[j] ? dot(query, row(keys.patchK, j, E)) / Math.sqrt(E) : -1e8));
    expect(maxDiff(patchLogits(config, head, keys, xHat, -1), hand(q))).toBeLessThan(1e-4);
    // Last patch = row 2, the first pointable token (index 0): the same as no rotation.
    expect(maxDiff(patchLogits(config, head, keys, xHat, 2), hand(q))).toBeLessThan(1e-4);
    // Row 4 has index 2: the query turns by 2, and the scores change.
    expect(maxDiff(patchLogits(config, head, keys, xHat, 4), hand(rotate(q, 2)))).toBeLessThan(1e-4);
    expect(maxDiff(patchLogits(config, head, keys, xHat, 4).slice(2), hand(q).slice(2))).toBeGreaterThan(1e-3);
    // The no-more-points key is not turned: q_rot · vector.
    expect(patchLogits(config, head, keys, xHat, 4)[rows]).toBeCloseTo(dot(rotate(q, 2), head.noMorePoints) / Math.sqrt(E), 4);
  });

  it('scores subpatches subpatch_q(x̂)·subpatch_k(window slot)/√E, padded slots −1e5', () => {
    const keys = keysOf();
    const xHat = Float32Array.from({ length: d }, (_, i) => Math.sin(i * 0.5));
    const q = dense(xHat, head.subpatchQ.w, head.subpatchQ.b, E);
    const got = subpatchLogits(config, head, keys, xHat, 3);
    for (let s = 0; s < 3; s++) expect(got[s]).toBeCloseTo(dot(q, dense(row(windows, 3 * P + s, VIT), head.subpatchK.w, head.subpatchK.b, E)) / Math.sqrt(E), 4);
    expect(got[3]).toBe(POINT_SMALL);
  });

  it('scores the 3×3 location from the pre-norm state x, not x̂', () => {
    const x = Float32Array.from({ length: d }, (_, i) => 3 * Math.cos(i * 0.9));
    const got = locationLogits(config, head, x);
    expect(maxDiff(got, dense(x, head.location!.w, head.location!.b, 9))).toBeLessThan(1e-5);
    expect(maxDiff(got, dense(rms(x, head.xNorm!, 1e-6), head.location!.w, head.location!.b, 9))).toBeGreaterThan(1e-2);
  });
});

describe('MolmoPoint logits over the generated vocabulary', () => {
  const bounds = pointTokenBounds({ firstId: V + 128, nPatches: 6, nSubpatches: P, locations: true, noMorePointsClass: true });

  it("gives the patch token's logit to the best patch, sets the three grounding tokens to −1e5, then subpatches and 9 locations", () => {
    const lm = Float32Array.from({ length: V + 128 }, (_, i) => Math.sin(i));
    const patch = Float32Array.from([0.1, -2, 3, 0.5, 2.9, -1, 0]);
    const subpatch = Float32Array.from([1, 2, 3, 4]);
    const location = Float32Array.from({ length: 9 }, (_, i) => i / 10);
    const out = composeLogits(config, lm, { patch, subpatch, location }, bounds);
    expect(out.length).toBe(bounds.locationEnd);
    expect(out[bounds.patchStart + 2]).toBe(lm[point.patchTokenId]);
    expect(Array.from(out.subarray(bounds.patchStart, bounds.patchEnd)).filter((v) => v === POINT_SMALL)).toHaveLength(6);
    for (const id of [point.patchTokenId, point.subpatchTokenId, point.locationTokenId]) expect(out[id]).toBe(POINT_SMALL);
    expect(Array.from(out.subarray(0, point.patchTokenId))).toEqual(Array.from(lm.subarray(0, point.patchTokenId)));
    expect(Array.from(out.subarray(bounds.subpatchStart, bounds.subpatchEnd))).toEqual([1, 2, 3, 4]);
    expect(maxDiff(out.subarray(bounds.locationStart, bounds.locationEnd), location)).toBe(0);
    // Without point scores (the prefill): every grounding entry is −1e5.
    const none = composeLogits(config, lm, {}, bounds);
    expect(Array.from(none.subarray(bounds.patchStart)).every((v) => v === POINT_SMALL)).toBe(true);
  });
});

describe('MolmoPoint generation', () => {
  it('marks the global view unpointable, and gives no grounding id at the prefill', () => {
    const { session, step } = model.prefill(prompt.inputIds, prompt.tokenTypeIds, images);
    expect(session.keys.nPatches).toBe(2 * GLOBAL_ROWS);
    expect(Array.from(session.keys.patchKMask.subarray(0, GLOBAL_ROWS)).every((m) => m === 0)).toBe(true);
    expect(Array.from(session.keys.patchKMask.subarray(GLOBAL_ROWS)).every((m) => m === 1)).toBe(true);
    expect(step.patch).toBeUndefined();
    expect(argmax(step.logits)).toBeLessThan(session.bounds.patchStart);
  });

  it("scores each step with the head on the state before the final norm: patches always, a subpatch after a patch, a location after a subpatch", async () => {
    const session = freshSession();
    const b = session.bounds;
    const r = GLOBAL_ROWS + 33;
    const text = model.step(session, 9);
    // preNorm is the state before ln_f: ln_f of it through the lm head gives the step's lm logits.
    const lnF = await tensors.read(names.finalNorm);
    const finalState = rms(text.preNorm, lnF, 1e-6);
    expect(text.logits[5]).toBeCloseTo(dot(finalState, row(await tensors.read(pointNames.lmHead), 5, d)), 4);
    expect(text.logits[330]).toBeCloseTo(dot(finalState, row(await tensors.read(pointNames.lmHeadNew), 330 - V, d)), 4);
    expect(maxDiff(text.patch!, patchLogits(config, head, session.keys, pointInput(config, head, text.preNorm), -1))).toBe(0);
    expect([text.subpatch, text.location]).toEqual([undefined, undefined]);
    const afterPatch = model.step(session, b.patchStart + r);
    // The patch just fed in is not yet the query's turn (the model's input state), but names the window.
    expect(maxDiff(afterPatch.patch!, patchLogits(config, head, session.keys, pointInput(config, head, afterPatch.preNorm), -1))).toBe(0);
    expect(maxDiff(afterPatch.subpatch!, subpatchLogits(config, head, session.keys, pointInput(config, head, afterPatch.preNorm), r))).toBe(0);
    expect(afterPatch.location).toBeUndefined();
    expect(Array.from(afterPatch.logits.subarray(b.subpatchStart, b.subpatchEnd))).toEqual(Array.from(afterPatch.subpatch!));
    const afterSubpatch = model.step(session, b.subpatchStart + 1);
    expect(maxDiff(afterSubpatch.patch!, patchLogits(config, head, session.keys, pointInput(config, head, afterSubpatch.preNorm), r))).toBe(0);
    expect(maxDiff(afterSubpatch.location!, dense(afterSubpatch.preNorm, head.location!.w, head.location!.b, 9))).toBeLessThan(1e-5);
    expect(afterSubpatch.subpatch).toBeUndefined();
    expect(Array.from(afterSubpatch.logits.subarray(b.locationStart, b.locationEnd))).toEqual(Array.from(afterSubpatch.location!));
  });

  it('turns the patch query only once a patch has been fed in', () => {
    const a = freshSession();
    const b = freshSession();
    const c = freshSession();
    b.lastPatch = GLOBAL_ROWS; // the first pointable token: index 0
    c.lastPatch = GLOBAL_ROWS + 20; // index 20
    const [sa, sb, sc] = [a, b, c].map((s) => model.step(s, 9));
    // The same state everywhere (same tokens): only the query's rotation differs.
    expect(maxDiff(sa.logits.subarray(0, V + 128), sc.logits.subarray(0, V + 128))).toBe(0);
    expect(maxDiff(sa.patch!, sb.patch!)).toBe(0);
    expect(maxDiff(sa.patch!, sc.patch!)).toBeGreaterThan(1e-3);
    // Feeding a patch id records it: the next step turns by its index.
    const patchId = a.bounds.patchStart + GLOBAL_ROWS + 20;
    model.step(a, patchId);
    expect(a.lastPatch).toBe(GLOBAL_ROWS + 20);
  });

  it('embeds a generated patch as <|token_index|> + its image feature, "no more points" as <|token_index|>, a subpatch as build_vit_embedding of its ViT patch (replacing), a location as <|vit_loc|>', async () => {
    const session = freshSession();
    const b = session.bounds;
    const newEmbedding = await tensors.read(names.newEmbedding);
    const tokenRow = (id: number) => row(newEmbedding, id - V, d);
    const r = GLOBAL_ROWS + 33;
    expect(maxDiff(model.embedGenerated(session, b.patchStart + r), tokenRow(point.patchTokenId).map((v, i) => v + images.features0[r * d + i]))).toBeLessThan(1e-6);
    expect(maxDiff(model.embedGenerated(session, b.noMorePoints), tokenRow(point.patchTokenId))).toBe(0);
    expect(maxDiff(model.embedGenerated(session, b.locationStart + 4), tokenRow(point.locationTokenId))).toBe(0);
    // The subpatch reads the window of the patch fed in before it.
    model.step(session, b.patchStart + r);
    const w = await tensors.read(`${pointNames.vitEmbedding}.weight`);
    const bias = await tensors.read(`${pointNames.vitEmbedding}.bias`);
    for (let s = 0; s < P; s++) {
      const vitRow = prompt.pooledIdx[r * P + s];
      expect(vitRow).toBeGreaterThanOrEqual(0);
      const want = dense(row(vit, vitRow, VIT), w, bias, d);
      expect(maxDiff(model.embedGenerated(session, b.subpatchStart + s), want) / scaleOf(want), `slot ${s}`).toBeLessThan(1e-5);
    }
  });

  it('writes well-formed points under the rules (patch → subpatch → location, patches sorted, pointable only), which extractImagePoints places inside the image', () => {
    const g = model.generateGreedy({ inputIds: prompt.inputIds, tokenTypeIds: prompt.tokenTypeIds, images, maxNewTokens: 24 });
    const b = g.session.bounds;
    const kind = (id: number) => (id < b.patchStart ? 'text' : id < b.patchEndWithoutNoMorePoints ? 'patch' : id === b.noMorePoints ? 'end' : id < b.subpatchEnd ? 'subpatch' : 'location');
    expect(kind(g.tokens[0])).toBe('text');
    const triples: { row: number; slot: number; location: number }[] = [];
    let ended = false;
    for (let i = 0; i < g.tokens.length; i++) {
      const k = kind(g.tokens[i]);
      if (ended) expect(k).toBe('text');
      if (k === 'end') ended = true;
      if (k === 'subpatch' || k === 'location') expect(kind(g.tokens[i - (k === 'subpatch' ? 1 : 2)])).toBe('patch');
      if (k !== 'patch' || i + 2 >= g.tokens.length) continue;
      expect([kind(g.tokens[i + 1]), kind(g.tokens[i + 2])]).toEqual(['subpatch', 'location']);
      triples.push({ row: g.tokens[i] - b.patchStart, slot: g.tokens[i + 1] - b.subpatchStart, location: g.tokens[i + 2] - b.locationStart });
    }
    expect(triples.length).toBeGreaterThanOrEqual(2);
    for (const [i, t] of triples.entries()) {
      expect(t.row).toBeGreaterThanOrEqual(GLOBAL_ROWS); // the global view cannot be named
      if (i > 0) expect(t.row).toBeGreaterThanOrEqual(triples[i - 1].row);
      expect(prompt.pooledIdx[t.row * P + t.slot]).toBeGreaterThanOrEqual(0);
    }
    // The rules chose each id: after a patch only subpatches were left, after a subpatch only locations.
    g.tokens.forEach((_, i) => {
      const before = i > 0 ? kind(g.tokens[i - 1]) : 'text';
      if (before !== 'patch' && before !== 'subpatch') return;
      const [from, to] = before === 'patch' ? [b.subpatchStart, b.subpatchEnd] : [b.locationStart, b.locationEnd];
      const left = [...g.stepLogits[i].keys()].filter((j) => g.stepLogits[i][j] !== -Infinity);
      expect(left.length).toBeGreaterThan(0);
      expect(left.every((j) => j >= from && j < to)).toBe(true);
    });

    // As the answer's text, each point followed by its object's number: image points.
    const answer: number[] = [];
    triples.forEach((t, i) => answer.push(b.patchStart + t.row, b.subpatchStart + t.slot, b.locationStart + t.location, ...tinyTokenizer.encode(String(i + 1))));
    const text = groundingText(answer, b, (ids) => String.fromCharCode(...ids.map((id) => id - 1)));
    expect(text).toMatch(/^(<POINT_\d+><POINT_\d+><POINT_\d+>\d+)+$/);
    const points = extractImagePoints(text, prompt.pooledIdx, P, [imagePatchMap(plan, 0)], [[200, 100]], true);
    expect(points.length).toBeGreaterThanOrEqual(1);
    for (const p of points) {
      expect(p.image).toBe(0);
      expect(p.x).toBeGreaterThanOrEqual(0);
      expect(p.x).toBeLessThanOrEqual(200);
      expect(p.y).toBeGreaterThanOrEqual(0);
      expect(p.y).toBeLessThanOrEqual(100);
    }
  });

  it('uses [embedding; new_embedding] as the lm head when tied, and Molmo2 refuses to run a MolmoPoint', async () => {
    const tiedJson = tinyPointConfigJson();
    (tiedJson.text_config as Record<string, unknown>).tie_word_embeddings = true;
    const tied = tinyConfig(tiedJson);
    // The untied model with lm_head copies of the embedding must give the tied model's logits.
    const emb = await tensors.read(names.embedding);
    const newEmb = await tensors.read(names.newEmbedding);
    const untied = tensors.with(pointNames.lmHead, (data) => data.set(emb)).with(pointNames.lmHeadNew, (data) => data.set(newEmb));
    const a = (await MolmoPointReference.load(tied, tensors)).prefill(prompt.inputIds, prompt.tokenTypeIds, images).step.logits;
    const b = (await MolmoPointReference.load(config, untied)).prefill(prompt.inputIds, prompt.tokenTypeIds, images).step.logits;
    expect(maxDiff(a, b)).toBe(0);
    await expect(ReferenceModel.load(config, tensors)).rejects.toThrow(/MolmoPointReference/);
  });
});
