// The config.json of each Molmo2 the random checkpoints imitate (`make-tiny --family`, and the full
// sizes `make-tiny --size 4b|8b`): Molmo2-4B exactly as published; Molmo2-8B as far as it was seen
// (tools/assets/molmo2-8b/config.json, a partial copy whose unseen values are "__MISSING__") with every
// placeholder filled from the values listed below; Molmo2-VideoPoint-4B as far as it was seen
// (tools/assets/molmo2-videopoint-4b/config.json) with every placeholder taken from Molmo2-4B;
// Molmo2-O-7B, whose config.json was not seen at all, as Molmo2-4B's with every decoder value and
// token id replaced by the training code's (MOLMO2_O7B_VALUES); a MolmoPoint on Molmo2-4B's stack,
// whose config.json was not seen either, as Molmo2-4B's with MolmoPoint's keys and values
// (MOLMOPOINT_VALUES) from its config class, converter and training code.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { placeholderPaths } from '../../src/molmo2/config.ts';
import { readAssetJson } from './assets.ts';

export type FullSize = '4b' | '8b';
export const FULL_SIZES: readonly FullSize[] = ['4b', '8b'];
/** The published checkpoints a random checkpoint can take its config keys from. */
export type Family = '4b' | '8b' | 'videopoint-4b' | 'o-7b' | 'molmopoint';
export const FAMILIES: readonly Family[] = ['4b', '8b', 'videopoint-4b', 'o-7b', 'molmopoint'];

const MOLMO2_8B_PARTIAL_CONFIG = fileURLToPath(new URL('../assets/molmo2-8b/config.json', import.meta.url));
const VIDEOPOINT_4B_PARTIAL_CONFIG = fileURLToPath(new URL('../assets/molmo2-videopoint-4b/config.json', import.meta.url));

export interface FilledValue {
  /** Dotted path in config.json. */
  path: string;
  value: unknown;
  source: string;
}

const QWEN3_8B = 'Qwen/Qwen3-8B config.json on the Hugging Face Hub';
const SIBLING_4B = 'Molmo2-4B config.json (same conversion script and transformers version; not a Qwen3-8B field)';
const VIT_4B =
  'Molmo2-4B vit_config: the same SigLIP2 vision encoder (the 8B adapter_config seen as published has hidden_size 1152, head_dim 72 and vit_layers [-3, -9], the same as 4B)';

/**
 * Every "__MISSING__" of the partial Molmo2-8B config.json (from huggingface.co/smamooler/Molmo2-8B,
 * visible up to text_config.max_position_embeddings; see /work/shared/reference/SOURCES.md) and the
 * value written in its place. The seen part already has, as published: text hidden_size 4096,
 * intermediate_size 12288, head_dim 128, additional_vocab_size 128, layer_norm_eps 1e-06 (Qwen3-8B's
 * rms_norm_eps), max_position_embeddings 36864, adapter intermediate_size 12288 and text_hidden_size
 * 4096. Qwen3-8B's hidden_size 4096 / intermediate_size 12288 / head_dim 128 / rms_norm_eps 1e-06 agree.
 */
export const MOLMO2_8B_FILLED: readonly FilledValue[] = [
  { path: 'text_config.model_type', value: 'molmo2_text', source: SIBLING_4B },
  { path: 'text_config.norm_after', value: false, source: 'Qwen3-8B is pre-norm (Qwen3DecoderLayer: input_layernorm before attention); Molmo2-4B has false' },
  { path: 'text_config.num_attention_heads', value: 32, source: `${QWEN3_8B}: num_attention_heads 32` },
  { path: 'text_config.num_hidden_layers', value: 36, source: `${QWEN3_8B}: num_hidden_layers 36` },
  { path: 'text_config.num_key_value_heads', value: 8, source: `${QWEN3_8B}: num_key_value_heads 8` },
  { path: 'text_config.qk_norm_type', value: 'qwen3', source: 'Qwen3-8B has per-head q_norm/k_norm (Qwen3Attention); Molmo2-4B names it "qwen3"' },
  { path: 'text_config.qkv_bias', value: false, source: `${QWEN3_8B}: attention_bias false` },
  { path: 'text_config.residual_dropout', value: 0.0, source: `${QWEN3_8B}: attention_dropout 0.0; Molmo2-4B has 0.0` },
  { path: 'text_config.rope_scaling', value: null, source: `${QWEN3_8B}: rope_scaling null` },
  { path: 'text_config.rope_scaling_layers', value: null, source: `${SIBLING_4B}; Qwen3-8B has no layer-restricted RoPE scaling` },
  { path: 'text_config.rope_theta', value: 1000000.0, source: `${QWEN3_8B}: rope_theta 1000000 (Molmo2-4B uses 5000000; the 8B value was not seen)` },
  { path: 'text_config.use_cache', value: true, source: `${QWEN3_8B}: use_cache true` },
  { path: 'text_config.use_qk_norm', value: true, source: 'Qwen3-8B has q_norm/k_norm in every layer' },
  { path: 'text_config.vocab_size', value: 151936, source: `${QWEN3_8B}: vocab_size 151936` },
  { path: 'tie_word_embeddings', value: false, source: `${QWEN3_8B}: tie_word_embeddings false (untied lm_head; Molmo2-4B is also false)` },
  { path: 'transformers_version', value: '4.57.1', source: 'Molmo2-8B generation_config.json as published by allenai (sunjuice/Molmo2-8B duplicate): transformers_version 4.57.1' },
  { path: 'use_cache', value: true, source: `${QWEN3_8B}: use_cache true` },
  { path: 'use_frame_special_tokens', value: false, source: SIBLING_4B },
  { path: 'vit_config.attention_dropout', value: 0.0, source: VIT_4B },
  { path: 'vit_config.attn_implementation', value: 'sdpa', source: VIT_4B },
  { path: 'vit_config.float32_attention', value: true, source: VIT_4B },
  { path: 'vit_config.head_dim', value: 72, source: VIT_4B },
  { path: 'vit_config.hidden_act', value: 'gelu_pytorch_tanh', source: VIT_4B },
  { path: 'vit_config.hidden_size', value: 1152, source: VIT_4B },
  { path: 'vit_config.image_default_input_size', value: [378, 378], source: VIT_4B },
  { path: 'vit_config.image_num_pos', value: 729, source: VIT_4B },
  { path: 'vit_config.image_patch_size', value: 14, source: VIT_4B },
  { path: 'vit_config.initializer_range', value: 0.02, source: VIT_4B },
  { path: 'vit_config.intermediate_size', value: 4304, source: VIT_4B },
  { path: 'vit_config.layer_norm_eps', value: 1e-6, source: VIT_4B },
  { path: 'vit_config.model_type', value: 'molmo2', source: VIT_4B },
  { path: 'vit_config.num_attention_heads', value: 16, source: VIT_4B },
  { path: 'vit_config.num_hidden_layers', value: 27, source: VIT_4B },
  { path: 'vit_config.num_key_value_heads', value: 16, source: VIT_4B },
  { path: 'vit_config.residual_dropout', value: 0.0, source: VIT_4B },
];

function setPath(json: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let obj = json;
  for (const k of keys.slice(0, -1)) obj = obj[k] as Record<string, unknown>;
  obj[keys.at(-1)!] = structuredClone(value);
}

/** The value at a dotted path of config.json (undefined when a key on the way is absent). */
function getPath(json: Record<string, unknown>, path: string): unknown {
  return path.split('.').reduce<unknown>((obj, k) => (obj && typeof obj === 'object' ? (obj as Record<string, unknown>)[k] : undefined), json);
}

/** Every leaf of config.json as [dotted path, value] (arrays are leaves). */
function leaves(json: unknown, prefix = ''): [string, unknown][] {
  if (!json || typeof json !== 'object' || Array.isArray(json)) return [[prefix, json]];
  return Object.entries(json).flatMap(([k, v]) => leaves(v, prefix ? `${prefix}.${k}` : k));
}

const OLMO3_TRAINING = 'allenai/molmo2 olmo/model_configs.py OLMO3_7B_INSTRUCT';
const O7B_CONVERTER = 'allenai/molmo2 olmo/hf_model/convert_molmo2_to_hf.py';
const O7B_TOKENS = `${OLMO3_TRAINING}: vocab/embedding_size 100278, fix_pad_tokenizer, so olmo/tokenizer.py registers Molmo2's EXTRA_TOKENS at 100278 + their index (it asserts so)`;

/**
 * Molmo2-O-7B's config.json: Molmo2-4B's (same SigLIP2 encoder, adapter and Molmo2 keys) with these
 * values replaced. None was seen in a published file; each comes from the training code that the HF
 * conversion reads (the OLMo-3-7B-Instruct LLM config and how the converter maps it).
 */
export const MOLMO2_O7B_VALUES: readonly FilledValue[] = [
  { path: 'adapter_config.intermediate_size', value: 11008, source: `${OLMO3_TRAINING}: mlp_hidden_size 22016 / 2 (the projector's width is the LLM's MLP width, as 4B's 9728 and 8B's 12288 are)` },
  { path: 'adapter_config.text_hidden_size', value: 4096, source: `${OLMO3_TRAINING}: d_model 4096` },
  { path: 'text_config.hidden_size', value: 4096, source: `${OLMO3_TRAINING}: d_model 4096` },
  { path: 'text_config.num_attention_heads', value: 32, source: `${OLMO3_TRAINING}: n_heads 32` },
  { path: 'text_config.num_key_value_heads', value: 32, source: `${OLMO3_TRAINING}: n_kv_heads None (full multi-head attention)` },
  { path: 'text_config.head_dim', value: 128, source: `${OLMO3_TRAINING}: d_model / n_heads` },
  { path: 'text_config.num_hidden_layers', value: 32, source: `${OLMO3_TRAINING}: n_layers 32` },
  { path: 'text_config.intermediate_size', value: 11008, source: `${OLMO3_TRAINING}: mlp_hidden_size 22016, halved by the converter (SwiGLU)` },
  { path: 'text_config.vocab_size', value: 100278, source: `${OLMO3_TRAINING}: embedding_size 100278` },
  { path: 'text_config.max_position_embeddings', value: 65536, source: 'allenai/molmo2 README, converter note: "65536 for Molmo2-O-7B"' },
  { path: 'text_config.rope_theta', value: 500000.0, source: `${OLMO3_TRAINING}: rope_theta 500000` },
  {
    path: 'text_config.rope_scaling',
    value: { rope_type: 'yarn', factor: 8.0, attention_factor: 1.2079441541679836, original_max_position_embeddings: 8192, beta_fast: 32, beta_slow: 1 },
    source: `${OLMO3_TRAINING}: rope_type yarn, rope_factor 8, rope_attention_factor, rope_original_max_position_embeddings 8192, rope_beta_fast 32, rope_beta_slow 1; ${O7B_CONVERTER} copies each rope_* key that is set`,
  },
  { path: 'text_config.rope_scaling_layers', value: [3, 7, 11, 15, 19, 23, 27, 31], source: `${OLMO3_TRAINING}: full_attention_layers; ${O7B_CONVERTER} lists them (sliding_attention_rope_scaling defaults to false)` },
  { path: 'text_config.qk_norm_type', value: 'olmo', source: `${OLMO3_TRAINING}: attention_layer_norm True with the default (OLMo) norm type: q/k norms over the whole projection` },
  { path: 'text_config.norm_after', value: true, source: `${OLMO3_TRAINING}: norm_after True` },
  { path: 'text_config.layer_norm_eps', value: 1e-6, source: `${OLMO3_TRAINING}: layer_norm_eps 1e-6` },
  { path: 'image_start_token_id', value: 100278, source: O7B_TOKENS },
  { path: 'image_end_token_id', value: 100279, source: O7B_TOKENS },
  { path: 'image_patch_id', value: 100280, source: O7B_TOKENS },
  { path: 'image_high_res_id', value: 100280, source: O7B_TOKENS },
  { path: 'image_col_id', value: 100281, source: O7B_TOKENS },
  { path: 'low_res_image_start_token_id', value: 100282, source: O7B_TOKENS },
  { path: 'image_low_res_id', value: 100284, source: O7B_TOKENS },
  { path: 'frame_start_token_id', value: 100285, source: O7B_TOKENS },
  { path: 'frame_end_token_id', value: 100286, source: O7B_TOKENS },
];

const MP_CLASS = 'allenai/molmo2 olmo/hf_model/configuration_molmo_point.py MolmoPointConfig';
const MP_CONVERTER = 'allenai/molmo2 olmo/hf_model/convert_molmo_point_to_hf.py convert_config';
const MP_PRETRAIN = 'allenai/molmo2 launch_scripts/pretrain.py, --model molmo_point';
const MP_TRAINING = 'allenai/molmo2 olmo/models/molmo_point/molmo_point.py MolmoPointConfig default';
const MP_TOKENS = 'allenai/molmo2 olmo/tokenizer.py EXTRA_TOKENS, registered from 151936 in order (the converter reads the ids from the tokenizer)';

/**
 * A MolmoPoint on Molmo2-4B's stack (as MolmoPoint-Vid-4B is built on Qwen3-4B): Molmo2-4B's
 * config.json with these values set (keys MolmoPointConfig adds, or values it changes) and
 * MOLMOPOINT_REMOVED deleted. None was seen in a published MolmoPoint config.json; each comes from
 * the config class, the converter (which decides what config.json holds) or the training config it
 * reads. The ViT, adapter widths and decoder stay Molmo2-4B's.
 */
export const MOLMOPOINT_VALUES: readonly FilledValue[] = [
  { path: 'model_type', value: 'molmo_point', source: `${MP_CLASS}.model_type` },
  { path: 'architectures', value: ['MolmoPointForConditionalGeneration'], source: 'save_pretrained of MolmoPointForConditionalGeneration (convert_molmo_point_to_hf.py save)' },
  {
    path: 'auto_map',
    value: { AutoConfig: 'configuration_molmo_point.MolmoPointConfig', AutoModelForImageTextToText: 'modeling_molmo_point.MolmoPointForConditionalGeneration' },
    source: `${MP_CLASS}.register_for_auto_class(); the converter adds AutoModelForImageTextToText`,
  },
  { path: 'low_res_image_start_token_id', value: null, source: `${MP_CONVERTER} does not pass it, so the class default None is written` },
  { path: 'image_non_indexable_patch_id', value: 151942, source: `${MP_CONVERTER}: tokenizer.image_low_res_token_id (<im_low>); ${MP_TOKENS}` },
  { path: 'patch_token_id', value: 151947, source: `${MP_CONVERTER}: tokenizer.token_index_token_id (<|token_index|>); ${MP_TOKENS}` },
  { path: 'subpatch_token_id', value: 151948, source: `${MP_CONVERTER}: tokenizer.subpatch_index_token_id (<|vit_index|>); ${MP_TOKENS}` },
  { path: 'location_token_id', value: 151949, source: `${MP_CONVERTER}: tokenizer.subpatch_loc_token_id (<|vit_loc|>); ${MP_TOKENS}` },
  { path: 'use_frame_special_tokens', value: true, source: `${MP_PRETRAIN}: video use_frame_special_tokens=True, which the converter copies` },
  { path: 'patch_location', value: '3x3', source: `${MP_PRETRAIN}: patch_location="3x3"` },
  { path: 'no_more_points_class', value: true, source: `${MP_PRETRAIN}: no_more_points_class=True` },
  { path: 'patch_embed_dim', value: 512, source: `${MP_PRETRAIN}: patch_embed_dim=512` },
  { path: 'patch_embedding_kind', value: 'image_feature0', source: `${MP_PRETRAIN}: patch_embedding_kind="image_feature0"` },
  { path: 'embed_selected_vit_patch', value: 'linear', source: `${MP_PRETRAIN}: embed_selected_vit_patch="linear"` },
  { path: 'embed_location', value: false, source: MP_TRAINING },
  { path: 'layer_norm_x', value: true, source: `${MP_PRETRAIN}: layer_norm_x=True` },
  { path: 'norm_logits', value: true, source: `${MP_CLASS} default: ${MP_CONVERTER} does not pass norm_logits (the pretrain config's is True as well)` },
  { path: 'mask_patches', value: 'always', source: MP_TRAINING },
  { path: 'mask_subpatches', value: 'inference', source: MP_TRAINING },
  { path: 'mask_repeats', value: 'inference', source: MP_TRAINING },
  { path: 'token_prediction_rotary', value: 'one_d', source: MP_TRAINING },
  { path: 'token_prediction_rotary_theta', value: 50000, source: MP_TRAINING },
  { path: 'adapter_config.model_type', value: 'molmo_point', source: 'MolmoPointAdapterConfig.model_type (the converter builds the adapter config with that class)' },
  { path: 'adapter_config.positional_embeddings', value: null, source: `${MP_PRETRAIN}: ConnectorConfig(positional_embeddings=None)` },
  { path: 'adapter_config.attention_pooling_out_layer', value: false, source: `${MP_PRETRAIN}: ConnectorConfig(pooling_out_layer=False); the converter maps it to attention_pooling_out_layer` },
  {
    path: 'adapter_config.pooling_attention_mask',
    value: true,
    source: 'allenai/molmo2 olmo/models/molmo_point/molmo_point_connector.py ConnectorConfig default (pretrain.py leaves it); Molmo2-4B has true as well',
  },
  {
    path: 'text_config.tie_word_embeddings',
    value: true,
    source: `${MP_CONVERTER}: tie_word_embeddings=llm_config.weight_tying, and olmo/model_configs.py QWEN3_4B_INSTRUCT has weight_tying=True`,
  },
];

/** Keys of Molmo2-4B's config.json that MolmoPointConfig does not have (so a converted config lacks them). */
export const MOLMOPOINT_REMOVED = ['image_low_res_id'] as const;

/** The config.json a random checkpoint of `family` is made from (every key of the published file, nothing missing). */
export async function publishedConfigJson(family: Family): Promise<Record<string, unknown>> {
  if (family === '4b') return readAssetJson('config.json');
  if (family === 'molmopoint') {
    const config = await readAssetJson('config.json');
    for (const key of MOLMOPOINT_REMOVED) delete config[key];
    for (const v of MOLMOPOINT_VALUES) setPath(config, v.path, v.value);
    return config;
  }
  if (family === 'o-7b') {
    const config = await readAssetJson('config.json');
    for (const v of MOLMO2_O7B_VALUES) {
      if (getPath(config, v.path) === undefined) throw new Error(`Molmo2-O-7B config: ${v.path} is not a key of Molmo2-4B's config.json`);
      setPath(config, v.path, v.value);
    }
    return config;
  }
  if (family === 'videopoint-4b') return videoPointConfigJson();
  const config = JSON.parse(await readFile(MOLMO2_8B_PARTIAL_CONFIG, 'utf8')) as Record<string, unknown>;
  const missing = new Set(placeholderPaths(config));
  for (const f of MOLMO2_8B_FILLED) {
    if (!missing.delete(f.path)) throw new Error(`Molmo2-8B config: ${f.path} is not a "__MISSING__" value of the partial config`);
    setPath(config, f.path, f.value);
  }
  if (missing.size) throw new Error(`Molmo2-8B config: no value for ${[...missing].join(', ')}`);
  return config;
}

/**
 * Molmo2-VideoPoint-4B is Molmo2-4B trained further on video pointing: the part of its config.json that
 * was seen equals the 4B's, so each unseen value is the 4B's at the same path.
 */
async function videoPointConfigJson(): Promise<Record<string, unknown>> {
  const partial = JSON.parse(await readFile(VIDEOPOINT_4B_PARTIAL_CONFIG, 'utf8')) as Record<string, unknown>;
  return sameAsSibling(partial, await readAssetJson('config.json'), 'Molmo2-VideoPoint-4B');
}

/**
 * `partial` with each "__MISSING__" value taken from `base` (Molmo2-4B's config.json) at the same path.
 * A seen value that differs from the base's breaks the assumption that the two are the same
 * architecture, and is refused.
 */
export function sameAsSibling(partial: Record<string, unknown>, base: Record<string, unknown>, name: string): Record<string, unknown> {
  const config = structuredClone(partial);
  for (const [path, value] of leaves(partial)) {
    const theirs = getPath(base, path);
    if (value === '__MISSING__') setPath(config, path, theirs);
    else if (JSON.stringify(value) !== JSON.stringify(theirs)) throw new Error(`${name} config: ${path} is ${JSON.stringify(value)}, not Molmo2-4B's ${JSON.stringify(theirs)}: its unseen values cannot be taken from Molmo2-4B`);
  }
  return config;
}
