// The tensor table of a Molmo2 or MolmoPoint checkpoint (HF remote-code names), derived from its config.
// MolmoPoint (modeling_molmo_point.py) keeps the same ViT and decoder modules under other names:
// the ViT is `model.vit`, pooling and projector are `model.connector` (convert_molmo_point_to_hf.py
// renames the training code's `connectors.0`), and its point head and extended lm head are its own.
import type { Molmo2Config } from './config.ts';
import { POINT_HEAD_NEW_ROWS } from './molmopoint/point-config.ts';

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

const PREDICTOR = 'model.point_predictor';

/** MolmoPoint's own weights: MolmoPointModel.build_vit_embedding, PointPredictor, ExtendedLmHead. */
export const pointNames = {
  /** Learned rows added to each pooling window (AddPosEmbed.bias), [positions, vit width · layers]. */
  poolingPositions: 'model.connector.positional_embeddings.bias',
  /** Embedding of a generated subpatch id from its ViT patch's features. */
  vitEmbedding: 'model.build_vit_embedding',
  patchQ: `${PREDICTOR}.patch_q`,
  patchK: `${PREDICTOR}.patch_k`,
  subpatchQ: `${PREDICTOR}.subpatch_q`,
  subpatchK: `${PREDICTOR}.subpatch_k`,
  /** The "no more points" key (MolmoPointPadWithLearnedVector). */
  noMorePoints: `${PREDICTOR}.add_no_point_class_embed.vector`,
  locationK: `${PREDICTOR}.subpatch_loc_k`,
  xNorm: `${PREDICTOR}.x_norm.weight`,
  lmHead: 'lm_head.output_embeddings',
  lmHeadNew: 'lm_head.new_output_embeddings',
};

/** The vision stack's names in `c`'s layout. */
export interface VisionNames {
  patchEmbedding: string;
  positionalEmbedding: string;
  vitBlock: (i: number) => string;
  pooling: string;
  projector: string;
}

const POINT_VISION: VisionNames = {
  patchEmbedding: 'model.vit.patch_embedding',
  positionalEmbedding: 'model.vit.positional_embedding',
  vitBlock: (i) => `model.vit.transformer.resblocks.${i}`,
  pooling: 'model.connector.image_pooling_2d',
  projector: 'model.connector.image_projector',
};

export function visionNames(c: Pick<Molmo2Config, 'point'>): VisionNames {
  return c.point ? POINT_VISION : names;
}

/**
 * Every tensor the checkpoint must hold, with its shape. ViT blocks beyond the ones the adapter
 * reads are not published (config declares 27, weights stop at block 24).
 */
export function expectedTensors(c: Molmo2Config): Map<string, Shape> {
  const t = new Map<string, Shape>();
  const v = c.vit;
  const vn = visionNames(c);
  const patchIn = v.patchSize * v.patchSize * 3;
  t.set(`${vn.patchEmbedding}.weight`, [v.hiddenSize, patchIn]);
  t.set(`${vn.patchEmbedding}.bias`, [v.hiddenSize]);
  t.set(vn.positionalEmbedding, [v.numPos, v.hiddenSize]);
  for (let i = 0; i < c.vitBlocksUsed; i++) {
    const b = vn.vitBlock(i);
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
    t.set(`${vn.pooling}.${w}.weight`, [poolWidth, poolIn]);
    t.set(`${vn.pooling}.${w}.bias`, [poolWidth]);
  }
  // MolmoPoint's pooling may drop its output projection (attention_pooling_out_layer false).
  if (!c.point || c.point.poolingOutLayer) {
    t.set(`${vn.pooling}.wo.weight`, [a.hiddenSize, poolWidth]);
    t.set(`${vn.pooling}.wo.bias`, [a.hiddenSize]);
  }
  t.set(`${vn.projector}.w1.weight`, [a.intermediateSize, a.hiddenSize]);
  t.set(`${vn.projector}.w3.weight`, [a.intermediateSize, a.hiddenSize]);
  t.set(`${vn.projector}.w2.weight`, [a.textHiddenSize, a.intermediateSize]);

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
  if (c.point) {
    pointTensors(c, poolIn, t);
    return t;
  }
  // The HF conversion always writes lm_head (for Molmo2-4B it holds a copy of the embedding rows).
  t.set(names.lmHead, [x.vocabSize, x.hiddenSize]);
  return t;
}

/**
 * MolmoPoint's extra tensors. `vitWidth` is the concatenated ViT features' width (hidden · vit_layers).
 * The no-more-points vector exists whatever no_more_points_class says (PointPredictor always builds it);
 * x_norm only with layer_norm_x, subpatch_loc_k only with 3×3 locations. A tied lm head is the input
 * embedding, and save_pretrained drops tied copies, so lm_head.* is listed only when untied.
 */
function pointTensors(c: Molmo2Config, vitWidth: number, t: Map<string, Shape>): void {
  const p = c.point!;
  const d = c.text.hiddenSize;
  const e = p.patchEmbedDim;
  if (p.poolingPositions > 0) t.set(pointNames.poolingPositions, [p.poolingPositions, vitWidth]);
  t.set(`${pointNames.vitEmbedding}.weight`, [d, vitWidth]);
  t.set(`${pointNames.vitEmbedding}.bias`, [d]);
  for (const [name, inDim] of [
    [pointNames.patchQ, d],
    [pointNames.patchK, d],
    [pointNames.subpatchQ, d],
    [pointNames.subpatchK, vitWidth],
  ] as const) {
    t.set(`${name}.weight`, [e, inDim]);
    t.set(`${name}.bias`, [e]);
  }
  t.set(pointNames.noMorePoints, [e]);
  if (p.patchLocation === '3x3') {
    t.set(`${pointNames.locationK}.weight`, [9, d]);
    t.set(`${pointNames.locationK}.bias`, [9]);
  }
  if (p.layerNormX) t.set(pointNames.xNorm, [d]);
  if (!p.tiedLmHead) {
    t.set(pointNames.lmHead, [c.text.vocabSize, d]);
    t.set(pointNames.lmHeadNew, [POINT_HEAD_NEW_ROWS, d]);
  }
}
