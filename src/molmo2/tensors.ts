// The tensor table of a Molmo2 checkpoint (HF remote-code names), derived from its config.
import type { Molmo2Config } from './config.ts';

export type Shape = number[];

const VIT = 'model.vision_backbone.image_vit';
const POOL = 'model.vision_backbone.image_pooling_2d';
const PROJ = 'model.vision_backbone.image_projector';
const LLM = 'model.transformer';

/** Weight names, grouped so graph builders and the reference read them the same way. */
export const names = {
  patchEmbedding: `${VIT}.patch_embedding`,
  positionalEmbedding: `${VIT}.positional_embedding`,
  vitBlock: (i: number) => `${VIT}.transformer.resblocks.${i}`,
  pooling: POOL,
  projector: PROJ,
  embedding: `${LLM}.wte.embedding`,
  newEmbedding: `${LLM}.wte.new_embedding`,
  block: (i: number) => `${LLM}.blocks.${i}`,
  finalNorm: `${LLM}.ln_f.weight`,
  lmHead: 'lm_head.weight',
};

/**
 * Every tensor the checkpoint must hold, with its shape. ViT blocks beyond the ones the adapter
 * reads are not published (config declares 27, weights stop at block 24).
 */
export function expectedTensors(c: Molmo2Config): Map<string, Shape> {
  const t = new Map<string, Shape>();
  const v = c.vit;
  const patchIn = v.patchSize * v.patchSize * 3;
  t.set(`${names.patchEmbedding}.weight`, [v.hiddenSize, patchIn]);
  t.set(`${names.patchEmbedding}.bias`, [v.hiddenSize]);
  t.set(names.positionalEmbedding, [v.numPos, v.hiddenSize]);
  for (let i = 0; i < c.vitBlocksUsed; i++) {
    const b = names.vitBlock(i);
    for (const w of ['wq', 'wk', 'wv', 'wo']) {
      t.set(`${b}.attention.${w}.weight`, [v.hiddenSize, v.hiddenSize]);
      t.set(`${b}.attention.${w}.bias`, [v.hiddenSize]);
    }
    for (const n of ['attention_norm', 'ffn_norm']) {
      t.set(`${b}.${n}.weight`, [v.hiddenSize]);
      t.set(`${b}.${n}.bias`, [v.hiddenSize]);
    }
    t.set(`${b}.feed_forward.w1.weight`, [v.intermediateSize, v.hiddenSize]);
    t.set(`${b}.feed_forward.w1.bias`, [v.intermediateSize]);
    t.set(`${b}.feed_forward.w2.weight`, [v.hiddenSize, v.intermediateSize]);
    t.set(`${b}.feed_forward.w2.bias`, [v.hiddenSize]);
  }
  const a = c.adapter;
  const poolIn = v.hiddenSize * a.vitLayers.length;
  const poolWidth = a.numHeads * a.headDim;
  for (const w of ['wq', 'wk', 'wv']) {
    t.set(`${POOL}.${w}.weight`, [poolWidth, poolIn]);
    t.set(`${POOL}.${w}.bias`, [poolWidth]);
  }
  t.set(`${POOL}.wo.weight`, [a.hiddenSize, poolWidth]);
  t.set(`${POOL}.wo.bias`, [a.hiddenSize]);
  t.set(`${PROJ}.w1.weight`, [a.intermediateSize, a.hiddenSize]);
  t.set(`${PROJ}.w3.weight`, [a.intermediateSize, a.hiddenSize]);
  t.set(`${PROJ}.w2.weight`, [a.textHiddenSize, a.intermediateSize]);

  const x = c.text;
  t.set(names.embedding, [x.vocabSize, x.hiddenSize]);
  t.set(names.newEmbedding, [x.additionalVocabSize, x.hiddenSize]);
  const qkv = (x.numHeads + 2 * x.numKvHeads) * x.headDim;
  for (let i = 0; i < x.numLayers; i++) {
    const b = names.block(i);
    t.set(`${b}.attn_norm.weight`, [x.hiddenSize]);
    t.set(`${b}.ff_norm.weight`, [x.hiddenSize]);
    t.set(`${b}.self_attn.att_proj.weight`, [qkv, x.hiddenSize]);
    if (x.qkvBias) t.set(`${b}.self_attn.att_proj.bias`, [qkv]);
    t.set(`${b}.self_attn.attn_out.weight`, [x.hiddenSize, x.numHeads * x.headDim]);
    // Qwen3 normalizes each head; OLMo (O-7B) the whole projection.
    const olmo = x.qkNormType === 'olmo';
    t.set(`${b}.self_attn.q_norm.weight`, [olmo ? x.numHeads * x.headDim : x.headDim]);
    t.set(`${b}.self_attn.k_norm.weight`, [olmo ? x.numKvHeads * x.headDim : x.headDim]);
    t.set(`${b}.mlp.ff_proj.weight`, [2 * x.intermediateSize, x.hiddenSize]);
    t.set(`${b}.mlp.ff_out.weight`, [x.hiddenSize, x.intermediateSize]);
  }
  t.set(names.finalNorm, [x.hiddenSize]);
  // The HF conversion always writes lm_head (for Molmo2-4B it holds a copy of the embedding rows).
  t.set(names.lmHead, [x.vocabSize, x.hiddenSize]);
  return t;
}
