// Vision graph: pixel_values [n_crops, patches, patch_dim] + pooled_idx [T, P] → image_features [T, d_model].
// SigLIP-style pre-LN ViT (only the blocks the adapter reads), the outputs of `adapter.vitLayers`
// concatenated in that order, attention pooling whose query is the masked mean of each window, and
// the SwiGLU projector. The residual stream, norms, softmax and attention run in float32 whatever the
// variant's dtype; the MLP products enter their down projections through the fp16 guard.
import { names } from '../tensors.ts';
import { VISION_INPUTS, VISION_OUTPUTS } from './io.ts';
import type { CheckedWeights } from './checked-weights.ts';
import { float, ONNX_TYPE, type Graph } from './graph.ts';
import { cast, DEFAULT_Q4, floatTable, geluTanh, guardedLinear, layerNorm, linear, MASKED, silu, wholeTable, type FloatType, type Precision, type Q4Settings, type WeightFormat } from './layers.ts';

export interface VisionOptions {
  /** `precision.vision` stores the ViT, pooling and projector linears; the patch embedding stays float. */
  precision: Precision;
  q4?: Q4Settings;
}

export async function buildVision(g: Graph, w: CheckedWeights, o: VisionOptions): Promise<void> {
  const c = w.config;
  const v = c.vit;
  const a = c.adapter;
  const act = o.precision.act;
  const format = o.precision.vision;
  const settings = o.q4 ?? DEFAULT_Q4;
  const q4 = { ...settings, accuracyLevel: settings.visionAccuracyLevel };
  const patchDim = v.patchSize * v.patchSize * 3;
  const d = v.hiddenSize;

  const pixels = g.input(VISION_INPUTS.pixelValues, 'float32', ['n_crops', v.numPos, patchDim]);
  const pooledIdx = g.input(VISION_INPUTS.pooledIdx, 'int64', ['num_tokens', 'pool_size']);

  // Patch embedding (588 inputs in (row, col, channel) order, matching pixel_values) + positions.
  let x = await g.scope('/vision/patch_embed', async () => {
    const pe = names.patchEmbedding;
    const bias = await w.get(`${pe}.bias`);
    const patches = await linear(g, cast(g, pixels, 'float32', act), { name: pe, weight: w.ref(`${pe}.weight`), N: d, K: patchDim, bias, format: act, act });
    const positions = wholeTable(g, await floatTable(g, names.positionalEmbedding, [w.ref(names.positionalEmbedding)], d, act));
    return g.op('Add', [cast(g, patches, act, 'float32'), cast(g, positions, act, 'float32')]); // the float32 residual stream
  });

  const kept = new Map<number, string>();
  for (let i = 0; i < c.vitBlocksUsed; i++) {
    const input = x;
    x = await g.scope(`/vision/blocks.${i}`, () => vitBlock(g, w, i, input, act, format, q4));
    if (a.vitLayers.includes(i)) kept.set(i, x);
  }
  const inDim = a.vitLayers.length * d;
  const features = g.scope('/vision/features', () => {
    const perLayer = a.vitLayers.map((l) => kept.get(l) as string);
    const concat = perLayer.length === 1 ? perLayer[0] : g.op('Concat', perLayer, { axis: -1 });
    return g.op('Reshape', [concat, g.int64([-1, inDim])]); // [n_crops·patches, inDim], crop-major
  });

  const pooled = await g.scope('/vision/pooling', () => attentionPool(g, w, features, pooledIdx, act, format, q4));
  const out = await g.scope('/vision/projector', () => projector(g, w, pooled, act, format, q4));
  g.output(out, 'float32', ['num_tokens', a.textHiddenSize], VISION_OUTPUTS.imageFeatures);
}

/**
 * x += wo(MHA(LN1(x))); x += w2(gelu_tanh(w1(LN2(x)))) on the float32 residual stream x. Nodes go
 * under the caller's block scope.
 */
async function vitBlock(g: Graph, w: CheckedWeights, i: number, x: string, act: FloatType, format: WeightFormat, q4: Q4Settings): Promise<string> {
  const v = w.config.vit;
  const d = v.hiddenSize;
  const b = names.vitBlock(i);
  const lin = async (scope: string, input: string, tensor: string, N: number, K: number) => {
    const bias = await w.get(`${b}.${tensor}.bias`);
    return g.scope(scope, () => linear(g, input, { name: `${b}.${tensor}`, weight: w.ref(`${b}.${tensor}.weight`), N, K, bias, format, act, q4 }));
  };
  const norm = async (scope: string, input: string, n: string) => {
    const weight = await w.get(`${b}.${n}.weight`);
    const bias = await w.get(`${b}.${n}.bias`);
    return g.scope(scope, () => layerNorm(g, input, { name: `${b}.${n}`, weight, bias, eps: v.layerNormEps, act: 'float32', out: act }));
  };

  const h = await norm('attn_norm', x, 'attention_norm');
  const width = v.numHeads * v.headDim;
  const attn = await g.scope('attn', async () => {
    const q = cast(g, await lin('q_proj', h, 'attention.wq', width, d), act, 'float32');
    const k = cast(g, await lin('k_proj', h, 'attention.wk', width, d), act, 'float32');
    const vv = cast(g, await lin('v_proj', h, 'attention.wv', width, d), act, 'float32');
    const heads = g.ms('MultiHeadAttention', [q, k, vv], { num_heads: v.numHeads, scale: float(1 / Math.sqrt(v.headDim)) });
    return cast(g, await lin('o_proj', cast(g, heads, 'float32', act), 'attention.wo', d, width), act, 'float32');
  });
  x = g.op('Add', [x, attn]);

  const h2 = await norm('mlp_norm', x, 'ffn_norm');
  const mlp = await g.scope('mlp', async () => {
    const hidden = cast(g, await lin('fc1', h2, 'feed_forward.w1', v.intermediateSize, d), act, 'float32');
    const f = g.scope('act_fn', () => geluTanh(g, hidden));
    const fc2 = `${b}.feed_forward.w2`;
    const bias = await w.get(`${fc2}.bias`);
    return g.scope('fc2', () => guardedLinear(g, f, { name: fc2, weight: w.ref(`${fc2}.weight`), N: d, K: v.intermediateSize, bias, format, act, q4 }));
  });
  return g.op('Add', [x, mlp]);
}

/**
 * Attention pooling over windows of feature rows. pooled_idx −1 marks padding: padded rows are
 * zeroed, the query is their masked mean (÷ max(1, valid count)), and with pooling_attention_mask the
 * padded keys are masked out. Returns [T, adapter.hidden] in `act`.
 */
async function attentionPool(g: Graph, w: CheckedWeights, features: string, pooledIdx: string, act: FloatType, format: WeightFormat, q4: Q4Settings): Promise<string> {
  const a = w.config.adapter;
  const inDim = a.vitLayers.length * w.config.vit.hiddenSize;
  const width = a.numHeads * a.headDim;
  const p = names.pooling;

  // int32 indices: Where/Gather on int32 run on every execution provider.
  const idx = g.op('Cast', [pooledIdx], { to: ONNX_TYPE.int32 });
  const valid = g.op('GreaterOrEqual', [idx, g.constant('int32', [], [0])]); // [T, P]
  const safeIdx = g.op('Where', [valid, idx, g.constant('int32', [], [0])]);
  const validF = g.op('Unsqueeze', [g.op('Cast', [valid], { to: ONNX_TYPE.float32 }), g.int64([2])]); // [T, P, 1]
  const toPool = g.op('Mul', [g.op('Gather', [features, safeIdx], { axis: 0 }), validF]); // [T, P, inDim] float32

  let query: string;
  if (a.poolingAttentionMask) {
    const count = g.op('ReduceSum', [validF, g.int64([1])], { keepdims: 1 }); // [T, 1, 1]
    query = g.op('Div', [g.op('ReduceSum', [toPool, g.int64([1])], { keepdims: 1 }), g.op('Max', [count, g.scalar('float32', 1)])]);
  } else {
    query = g.op('ReduceMean', [toPool, g.int64([1])], { keepdims: 1 });
  }

  const lin = async (scope: string, input: string, tensor: string, N: number, K: number) => {
    const bias = await w.get(`${p}.${tensor}.bias`);
    return g.scope(scope, () => linear(g, cast(g, input, 'float32', act), { name: `${p}.${tensor}`, weight: w.ref(`${p}.${tensor}.weight`), N, K, bias, format, act, q4 }));
  };
  const q = cast(g, await lin('q_proj', query, 'wq', width, inDim), act, 'float32'); // [T, 1, W]
  const k = cast(g, await lin('k_proj', toPool, 'wk', width, inDim), act, 'float32'); // [T, P, W]
  const v = cast(g, await lin('v_proj', toPool, 'wv', width, inDim), act, 'float32');

  const heads = g.int64([0, -1, a.numHeads, a.headDim]);
  const qh = g.op('Transpose', [g.op('Reshape', [q, heads])], { perm: [0, 2, 1, 3] }); // [T, H, 1, hd]
  const kt = g.op('Transpose', [g.op('Reshape', [k, heads])], { perm: [0, 2, 3, 1] }); // [T, H, hd, P]
  const vh = g.op('Transpose', [g.op('Reshape', [v, heads])], { perm: [0, 2, 1, 3] }); // [T, H, P, hd]
  let scores = g.op('Mul', [g.op('MatMul', [qh, kt]), g.scalar('float32', 1 / Math.sqrt(a.headDim))]); // [T, H, 1, P]
  if (a.poolingAttentionMask) {
    const bias = g.op('Where', [valid, g.scalar('float32', 0), g.scalar('float32', MASKED)]); // [T, P]
    scores = g.op('Add', [scores, g.op('Unsqueeze', [bias, g.int64([1, 2])])]);
  }
  const probs = g.op('Softmax', [scores], { axis: -1 });
  const heads1 = g.op('Transpose', [g.op('MatMul', [probs, vh])], { perm: [0, 2, 1, 3] }); // [T, 1, H, hd]
  const attended = g.op('Reshape', [heads1, g.int64([-1, width])]); // [T, W]
  return lin('o_proj', attended, 'wo', a.hiddenSize, width);
}

/** w2(silu(w1(x)) · w3(x)), no biases: [T, adapter.hidden] in `act` → [T, d_model] float32. */
async function projector(g: Graph, w: CheckedWeights, x: string, act: FloatType, format: WeightFormat, q4: Q4Settings): Promise<string> {
  const a = w.config.adapter;
  const r = names.projector;
  const lin = (input: string, tensor: string, N: number, K: number) =>
    g.scope(tensor, () => linear(g, input, { name: `${r}.${tensor}`, weight: w.ref(`${r}.${tensor}.weight`), N, K, format, act, q4 }));
  const gate = cast(g, await lin(x, 'w1', a.intermediateSize, a.hiddenSize), act, 'float32');
  const up = cast(g, await lin(x, 'w3', a.intermediateSize, a.hiddenSize), act, 'float32');
  const product = g.scope('act_fn', () => g.op('Mul', [silu(g, gate), up]));
  return g.scope('w2', () => guardedLinear(g, product, { name: `${r}.w2`, weight: w.ref(`${r}.w2.weight`), N: a.textHiddenSize, K: a.intermediateSize, format, act, q4 }));
}
