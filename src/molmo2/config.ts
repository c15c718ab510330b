// Typed view of a Hugging Face Molmo2 checkpoint's config files (config.json, generation_config.json,
// preprocessor/processor/video_preprocessor configs). Platform-free: callers pass parsed JSON.
// MolmoPoint (model_type "molmo_point") is Molmo2's stack plus a point head: its config parses here
// too, with the head's fields in `point` (molmopoint/point-config.ts).
import { readPointConfig, type PointConfig } from './molmopoint/point-config.ts';
import type { YarnScaling } from './rope.ts';

export interface VitConfig {
  hiddenSize: number;
  intermediateSize: number;
  /** Blocks declared by the config (27 for released checkpoints). */
  declaredLayers: number;
  numHeads: number;
  headDim: number;
  layerNormEps: number;
  patchSize: number;
  /** [height, width] of one crop in pixels (378×378). */
  imageSize: [number, number];
  numPos: number;
}

export interface AdapterConfig {
  /** Block indices whose outputs are concatenated, in order (released: [24, 18]). */
  vitLayers: number[];
  hiddenSize: number;
  numHeads: number;
  headDim: number;
  intermediateSize: number;
  textHiddenSize: number;
  poolingAttentionMask: boolean;
}

export interface TextConfig {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  additionalVocabSize: number;
  ropeTheta: number;
  layerNormEps: number;
  maxPositionEmbeddings: number;
  qkvBias: boolean;
  useQkNorm: boolean;
  /**
   * 'qwen3': RMSNorm per head (weight [head_dim]; Molmo2-4B, -8B). 'olmo': RMSNorm over the whole q
   * and k projections (weights [heads·head_dim], [kv_heads·head_dim]; Molmo2-O-7B).
   */
  qkNormType: 'qwen3' | 'olmo';
  /** Post-norm blocks (O-7B): x + norm(attn(x)), then x + norm(mlp(x)); else pre-norm. */
  normAfter: boolean;
  /** YaRN RoPE (O-7B), or null for plain RoPE. */
  ropeScaling: YarnScaling | null;
  /** Layers that use the YaRN table; null: all of them (when ropeScaling is set). */
  ropeScalingLayers: number[] | null;
}

export interface TokenIds {
  imageStart: number;
  imageEnd: number;
  imagePatch: number;
  imageCol: number;
  lowResImageStart: number;
  imageLowRes: number;
  frameStart: number;
  frameEnd: number;
  bos: number;
  eos: number;
  pad: number;
}

export interface Molmo2Config {
  vit: VitConfig;
  adapter: AdapterConfig;
  text: TextConfig;
  tokens: TokenIds;
  tieWordEmbeddings: boolean;
  useFrameSpecialTokens: boolean;
  /** ViT blocks that must exist in the weights: 0 .. max(vitLayers). */
  vitBlocksUsed: number;
  /** MolmoPoint's point head; absent for Molmo2. */
  point?: PointConfig;
}

export interface ConfigCheck {
  config?: Molmo2Config;
  /** Dotted paths of fields whose value is missing or the placeholder "__MISSING__". */
  missing: string[];
  /** Fields present but unusable, and checkpoints this product does not support. */
  errors: string[];
}

const MISSING = '__MISSING__';
type Json = Record<string, unknown>;

/** Reads config.json fields, collecting missing ones and errors (shared with molmopoint/point-config.ts). */
export type ConfigReader = Reader;

class Reader {
  missing: string[] = [];
  errors: string[] = [];
  constructor(private readonly root: Json) {}

  raw(path: string): unknown {
    let v: unknown = this.root;
    for (const key of path.split('.')) {
      if (v === null || typeof v !== 'object') return undefined;
      v = (v as Json)[key];
    }
    return v;
  }

  private get(path: string): unknown {
    const v = this.raw(path);
    if (v === undefined || v === MISSING) {
      this.missing.push(path);
      return undefined;
    }
    return v;
  }

  num(path: string, fallback = NaN): number {
    const v = this.get(path);
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      this.errors.push(`${path} must be a number, got ${JSON.stringify(v)}`);
      return fallback;
    }
    return v;
  }

  int(path: string): number {
    const v = this.num(path);
    if (!Number.isNaN(v) && !Number.isInteger(v)) this.errors.push(`${path} must be an integer, got ${v}`);
    return v;
  }

  bool(path: string, fallback = false): boolean {
    const v = this.get(path);
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') {
      this.errors.push(`${path} must be true or false, got ${JSON.stringify(v)}`);
      return fallback;
    }
    return v;
  }

  /** A field that must be present (not "__MISSING__") but whose value we do not use beyond a check. */
  present(path: string): unknown {
    return this.get(path);
  }
}

/**
 * Reads config.json (and generation_config.json when given) into a Molmo2Config. Never throws: the
 * result lists missing fields and errors; `config` is set only when both lists are empty.
 */
export function parseMolmo2Config(configJson: Json, generationJson?: Json): ConfigCheck {
  const r = new Reader(configJson);

  const modelType = r.present('model_type');
  const isPoint = modelType === 'molmo_point';
  if (modelType !== undefined && modelType !== 'molmo2' && !isPoint) {
    r.errors.push(`model_type "${String(modelType)}" is not a Molmo2 or MolmoPoint checkpoint`);
  }
  const archs = r.present('architectures');
  // The architecture decides which remote class runs the weights; it must be the model type's own.
  if (Array.isArray(archs) && archs.some((a) => typeof a === 'string' && a.includes('MolmoPoint')) !== isPoint) {
    r.errors.push(`architectures ${archs.join(', ')} do not match model_type "${String(modelType)}"`);
  }

  const vit: VitConfig = {
    hiddenSize: r.int('vit_config.hidden_size'),
    intermediateSize: r.int('vit_config.intermediate_size'),
    declaredLayers: r.int('vit_config.num_hidden_layers'),
    numHeads: r.int('vit_config.num_attention_heads'),
    headDim: r.int('vit_config.head_dim'),
    layerNormEps: r.num('vit_config.layer_norm_eps'),
    patchSize: r.int('vit_config.image_patch_size'),
    imageSize: [NaN, NaN],
    numPos: r.int('vit_config.image_num_pos'),
  };
  const size = r.present('vit_config.image_default_input_size');
  if (size !== undefined) {
    if (Array.isArray(size) && size.length === 2 && size.every((x) => Number.isInteger(x))) vit.imageSize = [size[0], size[1]];
    else r.errors.push(`vit_config.image_default_input_size must be [h, w], got ${JSON.stringify(size)}`);
  }
  const vitAct = r.present('vit_config.hidden_act');
  if (vitAct !== undefined && vitAct !== 'gelu_pytorch_tanh') r.errors.push(`vit_config.hidden_act "${String(vitAct)}" is not supported (expected gelu_pytorch_tanh)`);
  const vitKv = r.int('vit_config.num_key_value_heads');
  if (!Number.isNaN(vitKv) && vitKv !== vit.numHeads) r.errors.push('vit_config: grouped-query attention in the ViT is not supported');

  const adapter: AdapterConfig = {
    vitLayers: [],
    hiddenSize: r.int('adapter_config.hidden_size'),
    numHeads: r.int('adapter_config.num_attention_heads'),
    headDim: r.int('adapter_config.head_dim'),
    intermediateSize: r.int('adapter_config.intermediate_size'),
    textHiddenSize: r.int('adapter_config.text_hidden_size'),
    poolingAttentionMask: r.bool('adapter_config.pooling_attention_mask'),
  };
  const layers = r.present('adapter_config.vit_layers');
  if (layers !== undefined) {
    if (Array.isArray(layers) && layers.length > 0 && layers.every((x) => Number.isInteger(x))) {
      adapter.vitLayers = layers.map((l: number) => (l < 0 ? vit.declaredLayers + l : l));
    } else r.errors.push(`adapter_config.vit_layers must be a list of integers, got ${JSON.stringify(layers)}`);
  }
  const adapterAct = r.present('adapter_config.hidden_act');
  if (adapterAct !== undefined && adapterAct !== 'silu') r.errors.push(`adapter_config.hidden_act "${String(adapterAct)}" is not supported (expected silu)`);

  const text: TextConfig = {
    hiddenSize: r.int('text_config.hidden_size'),
    numLayers: r.int('text_config.num_hidden_layers'),
    numHeads: r.int('text_config.num_attention_heads'),
    numKvHeads: r.int('text_config.num_key_value_heads'),
    headDim: r.int('text_config.head_dim'),
    intermediateSize: r.int('text_config.intermediate_size'),
    vocabSize: r.int('text_config.vocab_size'),
    additionalVocabSize: r.int('text_config.additional_vocab_size'),
    ropeTheta: r.num('text_config.rope_theta'),
    layerNormEps: r.num('text_config.layer_norm_eps'),
    maxPositionEmbeddings: r.int('text_config.max_position_embeddings'),
    qkvBias: r.bool('text_config.qkv_bias'),
    useQkNorm: r.bool('text_config.use_qk_norm'),
    qkNormType: 'qwen3',
    normAfter: false,
    ropeScaling: null,
    ropeScalingLayers: null,
  };
  const textAct = r.present('text_config.hidden_act');
  if (textAct !== undefined && textAct !== 'silu') r.errors.push(`text_config.hidden_act "${String(textAct)}" is not supported (expected silu)`);
  text.normAfter = r.bool('text_config.norm_after');
  const qkNormType = r.present('text_config.qk_norm_type');
  if (qkNormType === 'qwen3' || qkNormType === 'olmo') text.qkNormType = qkNormType;
  else if (qkNormType !== undefined) r.errors.push(`text_config.qk_norm_type "${String(qkNormType)}" is not supported (expected "qwen3" or "olmo")`);
  text.ropeScaling = yarnScaling(r, text.maxPositionEmbeddings);
  const ropeLayers = r.present('text_config.rope_scaling_layers');
  if (ropeLayers !== undefined && ropeLayers !== null) {
    if (Array.isArray(ropeLayers) && ropeLayers.every((l) => Number.isInteger(l) && l >= 0 && l < text.numLayers)) text.ropeScalingLayers = [...ropeLayers];
    else r.errors.push(`text_config.rope_scaling_layers must list decoder layers 0..${text.numLayers - 1}, got ${JSON.stringify(ropeLayers)}`);
    if (!text.ropeScaling) r.errors.push('text_config.rope_scaling_layers is set but rope_scaling is not');
  }
  if (!text.useQkNorm && !r.missing.includes('text_config.use_qk_norm')) r.errors.push('text_config.use_qk_norm=false is not supported (every Molmo2 decoder normalizes q and k)');

  r.present('text_config.model_type');
  r.present('transformers_version');
  const tie = r.bool('tie_word_embeddings');
  const useFrameSpecialTokens = r.bool('use_frame_special_tokens');

  const point = isPoint ? readPointConfig(r, text.ropeTheta, text.additionalVocabSize) : undefined;
  const gen = new Reader(generationJson ?? {});
  const imageStart = r.int('image_start_token_id');
  const tokens: TokenIds = {
    imageStart,
    imageEnd: r.int('image_end_token_id'),
    imagePatch: r.int('image_patch_id'),
    imageCol: r.int('image_col_id'),
    lowResImageStart: point ? pointLowResStart(r, imageStart) : r.int('low_res_image_start_token_id'),
    imageLowRes: point && r.raw('image_low_res_id') === undefined ? point.nonIndexablePatchId : r.int('image_low_res_id'),
    frameStart: r.int('frame_start_token_id'),
    frameEnd: r.int('frame_end_token_id'),
    bos: generationJson ? gen.int('bos_token_id') : 151645,
    eos: generationJson ? gen.int('eos_token_id') : 151645,
    pad: generationJson ? gen.int('pad_token_id') : 151643,
  };
  r.missing.push(...gen.missing.map((p) => `generation_config.${p}`));
  r.errors.push(...gen.errors.map((e) => `generation_config.${e}`));

  const vitBlocksUsed = adapter.vitLayers.length ? Math.max(...adapter.vitLayers) + 1 : NaN;
  if (adapter.vitLayers.some((l) => l < 0 || l >= vit.declaredLayers)) r.errors.push(`adapter_config.vit_layers ${JSON.stringify(layers)} point outside the ${vit.declaredLayers} ViT blocks`);
  if (!Number.isNaN(vit.numHeads) && vit.numHeads * vit.headDim !== vit.hiddenSize) r.errors.push('vit_config: num_attention_heads × head_dim must equal hidden_size');
  // The pooling attention reshapes its output to hidden_size, so heads × head_dim must match it.
  if (!Number.isNaN(adapter.numHeads) && adapter.numHeads * adapter.headDim !== adapter.hiddenSize) r.errors.push('adapter_config: num_attention_heads × head_dim must equal hidden_size');
  if (!Number.isNaN(adapter.textHiddenSize) && !Number.isNaN(text.hiddenSize) && adapter.textHiddenSize !== text.hiddenSize) r.errors.push('adapter_config.text_hidden_size must equal text_config.hidden_size');
  if (!Number.isNaN(text.numKvHeads) && text.numHeads % text.numKvHeads !== 0) r.errors.push('text_config.num_attention_heads must be a multiple of num_key_value_heads');

  // Name every placeholder in the file, including fields this product does not read.
  const missing = [...new Set([...placeholderPaths(configJson), ...r.missing])].sort();
  const check: ConfigCheck = { missing, errors: r.errors };
  if (check.missing.length === 0 && check.errors.length === 0) {
    check.config = { vit, adapter, text, tokens, tieWordEmbeddings: tie, useFrameSpecialTokens, vitBlocksUsed };
    if (point) check.config.point = point;
  }
  return check;
}

/**
 * `<low_res_im_start>` of a MolmoPoint config. MolmoPointConfig keeps the field but
 * convert_molmo_point_to_hf.py never passes it, so a converted config.json holds null; the token
 * then sits where olmo/tokenizer.py's EXTRA_TOKENS put it, four after `<im_start>`.
 */
function pointLowResStart(r: Reader, imageStart: number): number {
  const v = r.raw('low_res_image_start_token_id');
  return v === null || v === undefined ? imageStart + 4 : r.int('low_res_image_start_token_id');
}

/**
 * text_config.rope_scaling: null, or YaRN with transformers 4.57's defaults for the keys it omits
 * (beta_fast 32, beta_slow 1, attention_factor 0.1·ln(factor) + 1, truncate true, original context =
 * max_position_embeddings). Other RoPE types are refused: no Molmo2 checkpoint uses them.
 */
function yarnScaling(r: Reader, maxPositions: number): YarnScaling | null {
  const raw = r.present('text_config.rope_scaling');
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    r.errors.push(`text_config.rope_scaling must be null or an object, got ${JSON.stringify(raw)}`);
    return null;
  }
  const o = raw as Json;
  const type = o.rope_type ?? o.type;
  if (type !== 'yarn') {
    r.errors.push(`text_config.rope_scaling type "${String(type)}" is not supported (Molmo2 checkpoints use none or "yarn")`);
    return null;
  }
  const factor = r.num('text_config.rope_scaling.factor');
  const num = (key: string, fallback: number) => (o[key] === undefined || o[key] === null ? fallback : r.num(`text_config.rope_scaling.${key}`, fallback));
  // `or` in the reference: a 0 (falsy) beta takes the default too.
  const betaFast = num('beta_fast', 32) || 32;
  const betaSlow = num('beta_slow', 1) || 1;
  const unsupported = ['mscale', 'mscale_all_dim'].filter((k) => o[k] !== undefined && o[k] !== null);
  if (unsupported.length && o.attention_factor === undefined) r.errors.push(`text_config.rope_scaling: ${unsupported.join(', ')} without attention_factor is not supported`);
  if (!(factor >= 1)) r.errors.push(`text_config.rope_scaling.factor must be ≥ 1, got ${factor}`);
  const truncate = o.truncate === undefined ? true : o.truncate;
  if (typeof truncate !== 'boolean') r.errors.push(`text_config.rope_scaling.truncate must be true or false, got ${JSON.stringify(truncate)}`);
  return {
    factor,
    originalMaxPositions: num('original_max_position_embeddings', maxPositions),
    attentionFactor: num('attention_factor', 0.1 * Math.log(factor) + 1),
    betaFast,
    betaSlow,
    truncate: truncate !== false,
  };
}

/**
 * The decoder's block style in words, for conversion plans: "Qwen3 blocks" (4B, 8B) or "OLMo-3 blocks
 * (norm after attention and MLP, q/k norm over the projection, YaRN RoPE on 8 of 32 layers)" (O-7B).
 */
export function decoderStyle(t: TextConfig): string {
  if (!t.normAfter && t.qkNormType === 'qwen3' && !t.ropeScaling) return 'Qwen3 blocks';
  const parts = [
    t.normAfter ? 'norm after attention and MLP' : 'norm before attention and MLP',
    t.qkNormType === 'olmo' ? 'q/k norm over the projection' : 'per-head q/k norm',
    t.ropeScaling ? `YaRN RoPE on ${t.ropeScalingLayers ? `${t.ropeScalingLayers.length} of ${t.numLayers}` : 'all'} layers` : 'plain RoPE',
  ];
  return `${t.normAfter && t.qkNormType === 'olmo' ? 'OLMo-3' : 'custom'} blocks (${parts.join(', ')})`;
}

/** Dotted paths of every value that is the "__MISSING__" placeholder. */
export function placeholderPaths(json: unknown, prefix = ''): string[] {
  if (json === MISSING) return [prefix];
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return [];
  return Object.entries(json as Json).flatMap(([k, v]) => placeholderPaths(v, prefix ? `${prefix}.${k}` : k));
}

/** Image and video preprocessing settings, from the processor config files (released values as defaults). */
export interface ProcessorSettings {
  maxCrops: number;
  overlapMargins: [number, number];
  imagePoolingSize: [number, number];
  videoPoolingSize: [number, number];
  imageMean: [number, number, number];
  imageStd: [number, number, number];
  maxFrames: number;
  maxFps: number;
  frameSampleMode: string;
  imageUseColTokens: boolean;
  useSingleCropColTokens: boolean;
  useSingleCropStartToken: boolean;
  videoUseColTokens: boolean;
  useFrameSpecialTokens: boolean;
  /**
   * The global view's image tokens are `<im_low>` instead of `<im_patch>` (MolmoPoint's processor:
   * they take image features but cannot be pointed at).
   */
  useLowResTokenForGlobalCrops: boolean;
}

export const RELEASED_PROCESSOR_SETTINGS: ProcessorSettings = {
  maxCrops: 8,
  overlapMargins: [4, 4],
  imagePoolingSize: [2, 2],
  videoPoolingSize: [3, 3],
  imageMean: [0.5, 0.5, 0.5],
  imageStd: [0.5, 0.5, 0.5],
  maxFrames: 384,
  maxFps: 2,
  frameSampleMode: 'uniform_last_frame',
  imageUseColTokens: true,
  useSingleCropColTokens: false,
  useSingleCropStartToken: true,
  videoUseColTokens: false,
  useFrameSpecialTokens: false,
  useLowResTokenForGlobalCrops: false,
};

/** Tokens an answer may run to unless a request says otherwise (dense video tracks are long). */
export const DEFAULT_MAX_NEW_TOKENS = 2048;

/** Reads the three processor config files; absent files or fields keep the released values. */
export function parseProcessorSettings(files: { preprocessor?: Json; processor?: Json; video?: Json }): ProcessorSettings {
  const s: ProcessorSettings = structuredClone(RELEASED_PROCESSOR_SETTINGS);
  const pick = <T>(obj: Json | undefined, key: string, fallback: T): T => {
    const v = obj?.[key];
    return v === undefined || v === null || v === MISSING ? fallback : (v as T);
  };
  const { preprocessor: pre, processor: proc, video } = files;
  s.maxCrops = pick(pre, 'max_crops', s.maxCrops);
  s.overlapMargins = pick(pre, 'overlap_margins', s.overlapMargins);
  s.imagePoolingSize = pick(pre, 'pooling_size', s.imagePoolingSize);
  s.imageMean = pick(pre, 'image_mean', s.imageMean);
  s.imageStd = pick(pre, 'image_std', s.imageStd);
  s.videoPoolingSize = pick(video, 'pooling_size', s.videoPoolingSize);
  s.maxFrames = pick(video, 'num_frames', s.maxFrames);
  s.maxFps = pick(video, 'max_fps', s.maxFps);
  s.frameSampleMode = pick(video, 'frame_sample_mode', s.frameSampleMode);
  s.imageUseColTokens = pick(proc, 'image_use_col_tokens', s.imageUseColTokens);
  // null means "same as image_use_col_tokens" in the reference processor (older hub revisions).
  s.useSingleCropColTokens =
    proc?.use_single_crop_col_tokens === null ? s.imageUseColTokens : pick(proc, 'use_single_crop_col_tokens', s.useSingleCropColTokens);
  s.useSingleCropStartToken = pick(proc, 'use_single_crop_start_token', s.useSingleCropStartToken);
  s.videoUseColTokens = pick(proc, 'video_use_col_tokens', s.videoUseColTokens);
  s.useFrameSpecialTokens = pick(proc, 'use_frame_special_tokens', s.useFrameSpecialTokens);
  s.useLowResTokenForGlobalCrops = pick(proc, 'use_low_res_token_for_global_crops', s.useLowResTokenForGlobalCrops);
  return s;
}
