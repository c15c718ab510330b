// MolmoPoint's own fields of config.json, as the official HF remote code reads them (allenai/molmo2
// olmo/hf_model/configuration_molmo_point.py MolmoPointConfig / MolmoPointAdapterConfig, used by
// modeling_molmo_point.py). Everything else of a MolmoPoint config.json is Molmo2's (config.ts).
// Values the remote code cannot run, or runs differently from the training code, are refused with
// the field named, so a checkpoint never silently gets a head it was not trained with.
import type { ConfigReader } from '../config.ts';
import type { PointRules } from './points.ts';

export interface PointConfig {
  /** `<|token_index|>`: the input embedding of a generated patch id (and of "no more points"). */
  patchTokenId: number;
  /** `<|vit_index|>`: the lm_head row whose logit is dropped for the subpatch choice. */
  subpatchTokenId: number;
  /** `<|vit_loc|>`: the input embedding of a generated location id. */
  locationTokenId: number;
  /** `<im_low>`: image tokens (the global view) that take an image feature but cannot be pointed at. */
  nonIndexablePatchId: number;
  /** '3x3': a location id follows each subpatch; null: points end at the subpatch. */
  patchLocation: '3x3' | null;
  /** A learned key after the patch keys: choosing it ends the points of the answer. */
  noMorePointsClass: boolean;
  /** Width of the patch / subpatch queries and keys. */
  patchEmbedDim: number;
  /** RMSNorm (`point_predictor.x_norm`) on the decoder state before the patch/subpatch queries and keys. */
  layerNormX: boolean;
  /** Without layerNormX: divide the state by √d_model (`norm_x`) instead of using it as it is. */
  normX: boolean;
  /** Divide patch and subpatch logits by √patchEmbedDim. */
  normLogits: boolean;
  /** 'one_d': patch keys rotated by their index among pointable tokens, the query by the last patch's. */
  rotary: 'none' | 'one_d';
  /** θ of that rotation (token_prediction_rotary_theta, or the decoder's rope_theta when null). */
  rotaryTheta: number;
  /** The constrained-decoding rules of MolmoPointLogitProcessor, from mask_repeats / mask_patches / mask_subpatches. */
  rules: PointRules;
  /** Learned rows added to each pooling window before pooling (`connector.positional_embeddings`), 0 = none. */
  poolingPositions: number;
  /** The pooling attention has its output projection `wo` (attention_pooling_out_layer). */
  poolingOutLayer: boolean;
  /** lm_head is the input embedding ([embedding; new_embedding]) instead of lm_head.output_embeddings. */
  tiedLmHead: boolean;
}

/** Rows ExtendedLmHead appends after the base vocabulary: fixed at 128 in the remote code. */
export const POINT_HEAD_NEW_ROWS = 128;

const MASK_VALUES = ['never', 'always', 'inference'] as const;

/** A string field that must be one of `allowed` (null allowed when listed). */
function choice<T extends string | null>(r: ConfigReader, path: string, allowed: readonly T[], why: string): T {
  const v = r.present(path);
  if (v === undefined) return allowed[0];
  if (!allowed.includes(v as T)) r.errors.push(`${path} ${JSON.stringify(v)} is not supported (expected ${allowed.map((a) => JSON.stringify(a)).join(' or ')}${why ? `: ${why}` : ''})`);
  return v as T;
}

/**
 * The point section of a MolmoPoint config.json. `ropeTheta` is the decoder's (the rotation's θ when
 * token_prediction_rotary_theta is null); `additionalVocab` is text_config.additional_vocab_size.
 */
export function readPointConfig(r: ConfigReader, ropeTheta: number, additionalVocab: number): PointConfig {
  const patchLocation = choice(r, 'patch_location', ['3x3', null] as const, '');
  // The remote code's PointPredictor compares token_prediction_rotary with strings: the class default
  // `True` would raise NotImplementedError there, so only what the converter writes is accepted.
  const rotary = choice(r, 'token_prediction_rotary', ['one_d', 'none'] as const, 'the HF remote code implements only these');
  const rawTheta = r.present('token_prediction_rotary_theta');
  // Null (or 0: `theta or rope_theta`) falls back to the decoder's θ, as the training code and
  // mlx-vlm's port do; the remote code's fallback reads `config.llm.rope_theta`, which
  // MolmoPointConfig does not have, so such a checkpoint could not run there at all.
  let rotaryTheta = ropeTheta;
  if (rawTheta !== undefined && rawTheta !== null) {
    if (typeof rawTheta !== 'number' || !Number.isFinite(rawTheta) || rawTheta < 0) r.errors.push(`token_prediction_rotary_theta must be a positive number or null, got ${JSON.stringify(rawTheta)}`);
    else if (rawTheta > 0) rotaryTheta = rawTheta;
  }
  const layerNormX = r.bool('layer_norm_x');
  // The remote code reads config.norm_x only without layer_norm_x; MolmoPointConfig does not define
  // it, so such a config.json must carry it or the remote code fails.
  const normX = layerNormX ? false : r.bool('norm_x');
  // norm_logits is not passed by convert_molmo_point_to_hf.py, so a converted config holds the class
  // default (true) whatever the training run used; a config without it gets that default too.
  const rawNormLogits = r.raw('norm_logits');
  const normLogits = rawNormLogits === undefined ? true : r.bool('norm_logits', true);

  choice(r, 'embed_selected_vit_patch', ['linear'] as const, 'the HF remote code builds only a linear subpatch embedding');
  // The remote code always embeds a generated patch with the image token's connector feature
  // ('image_feature0'); it ignores this field, whose class default is 'linear'.
  choice(r, 'patch_embedding_kind', ['image_feature0', 'linear'] as const, 'the HF remote code embeds a generated patch with its image feature');
  if (r.raw('embed_location') === true) r.errors.push('embed_location true is not supported: the HF remote code has no location embedding');

  // mask_* are the logits processor's switches at inference. prevent_repeats tests mask_repeats
  // against "all" / "inference" (not "always", which the training code's enum has): kept as is.
  const maskPatches = choice(r, 'mask_patches', [...MASK_VALUES, null], '');
  const maskSubpatches = choice(r, 'mask_subpatches', MASK_VALUES, '');
  const maskRepeats = choice(r, 'mask_repeats', [...MASK_VALUES, 'all', null], '');
  const rules: PointRules = {
    preventRepeats: maskRepeats === 'all' || maskRepeats === 'inference',
    forcePatchSorted: maskPatches === 'always' || maskPatches === 'inference',
    forceSubpatchSorted: maskSubpatches === 'always' || maskSubpatches === 'inference',
  };

  // The config class reads adapter_config through Molmo2AdapterConfig, which has neither of these,
  // so the adapter would fail without them: required.
  const rawPositions = r.present('adapter_config.positional_embeddings');
  let poolingPositions = 0;
  if (rawPositions !== undefined && rawPositions !== null) {
    if (!Number.isInteger(rawPositions) || (rawPositions as number) < 0) r.errors.push(`adapter_config.positional_embeddings must be a count or null, got ${JSON.stringify(rawPositions)}`);
    else poolingPositions = rawPositions as number;
  }
  const poolingOutLayer = r.bool('adapter_config.attention_pooling_out_layer');

  // ExtendedLmHead appends 128 rows whatever the config says, while the grounding ids start after
  // vocab_size + additional_vocab_size: the two agree only at 128.
  if (!Number.isNaN(additionalVocab) && additionalVocab !== POINT_HEAD_NEW_ROWS) r.errors.push(`text_config.additional_vocab_size ${additionalVocab} is not supported for MolmoPoint (its lm head has ${POINT_HEAD_NEW_ROWS} new rows)`);
  const tied = r.raw('text_config.tie_word_embeddings');
  const tiedLmHead = tied === undefined ? false : r.bool('text_config.tie_word_embeddings');

  const patchEmbedDim = r.int('patch_embed_dim');
  if (!Number.isNaN(patchEmbedDim) && (patchEmbedDim <= 0 || (rotary === 'one_d' && patchEmbedDim % 2 !== 0))) r.errors.push(`patch_embed_dim must be a positive${rotary === 'one_d' ? ' even' : ''} integer, got ${patchEmbedDim}`);
  return {
    patchTokenId: r.int('patch_token_id'),
    subpatchTokenId: r.int('subpatch_token_id'),
    locationTokenId: r.int('location_token_id'),
    nonIndexablePatchId: r.int('image_non_indexable_patch_id'),
    patchLocation,
    noMorePointsClass: r.bool('no_more_points_class'),
    patchEmbedDim,
    layerNormX,
    normX,
    normLogits,
    rotary,
    rotaryTheta,
    rules,
    poolingPositions,
    poolingOutLayer,
    tiedLmHead,
  };
}
