// Tiny random Molmo2 checkpoints in memory, for tests of the reference and of other runtimes.
// Every width differs (heads × head_dim ≠ d_model, adapter ≠ decoder width) so layout mistakes fail,
// and the ViT keeps the released 378-px / 14-px geometry so real preprocessing feeds it.
import { parseMolmo2Config, type Molmo2Config } from '../config.ts';
import { imagePixelValues, planImage, videoFramePixelValues } from '../image.ts';
import { buildPrompt, type BuiltPrompt } from '../prompt.ts';
import { molmo2ChatTemplate } from './molmo2-4b-chat-template.ts';
import { expectedTensors, names } from '../tensors.ts';
import type { TensorSource } from './weights.ts';

/** config.json of a tiny Molmo2 (released layout, small widths); ids ≥ 320 are image tokens. */
export function tinyConfigJson(): Record<string, unknown> {
  return {
    model_type: 'molmo2',
    architectures: ['Molmo2ForConditionalGeneration'],
    transformers_version: '4.57.1',
    tie_word_embeddings: false,
    use_frame_special_tokens: false,
    image_start_token_id: 320,
    image_end_token_id: 321,
    image_patch_id: 322,
    image_col_id: 323,
    low_res_image_start_token_id: 324,
    image_low_res_id: 326,
    frame_start_token_id: 327,
    frame_end_token_id: 328,
    vit_config: {
      hidden_size: 24,
      intermediate_size: 40,
      num_hidden_layers: 5, // blocks 0..3 are used, block 4 is declared but absent (like 27 vs 25)
      num_attention_heads: 3,
      num_key_value_heads: 3,
      head_dim: 8,
      layer_norm_eps: 1e-6,
      image_patch_size: 14,
      image_default_input_size: [378, 378],
      image_num_pos: 729,
      hidden_act: 'gelu_pytorch_tanh',
    },
    adapter_config: {
      vit_layers: [-2, -4], // → blocks [3, 1], later block first as in the released [-3, -9]
      hidden_size: 30,
      num_attention_heads: 3,
      num_key_value_heads: 3,
      head_dim: 10,
      intermediate_size: 44,
      text_hidden_size: 36,
      pooling_attention_mask: true,
      hidden_act: 'silu',
    },
    text_config: {
      model_type: 'molmo2_text',
      hidden_size: 36,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 10,
      intermediate_size: 52,
      vocab_size: 320,
      additional_vocab_size: 16,
      rope_theta: 10000,
      layer_norm_eps: 1e-6,
      max_position_embeddings: 4096,
      qkv_bias: false,
      use_qk_norm: true,
      qk_norm_type: 'qwen3',
      norm_after: false,
      hidden_act: 'silu',
      rope_scaling: null,
      rope_scaling_layers: null,
    },
  };
}

/**
 * config.json of a tiny MolmoPoint: the tiny Molmo2 with MolmoPoint's keys as its converter writes
 * them (no image_low_res_id, low_res_image_start_token_id null), 128 new rows, the point tokens
 * after the image tokens (as olmo/tokenizer.py's EXTRA_TOKENS: <|points|> 330, <|token_index|> 331,
 * <|vit_index|> 332, <|vit_loc|> 333), a point head of width 14 (every width still different),
 * 9 pooling position rows, no pooling output projection and an untied lm head.
 */
export function tinyPointConfigJson(): Record<string, unknown> {
  const json = tinyConfigJson();
  delete json.image_low_res_id;
  Object.assign(json, {
    model_type: 'molmo_point',
    architectures: ['MolmoPointForConditionalGeneration'],
    low_res_image_start_token_id: null,
    image_non_indexable_patch_id: 326,
    patch_token_id: 331,
    subpatch_token_id: 332,
    location_token_id: 333,
    patch_location: '3x3',
    no_more_points_class: true,
    patch_embed_dim: 14,
    patch_embedding_kind: 'image_feature0',
    embed_selected_vit_patch: 'linear',
    embed_location: false,
    layer_norm_x: true,
    norm_logits: true,
    mask_patches: 'always',
    mask_subpatches: 'inference',
    mask_repeats: 'inference',
    token_prediction_rotary: 'one_d',
    token_prediction_rotary_theta: 50000,
  });
  Object.assign(json.adapter_config as Record<string, unknown>, { model_type: 'molmo_point', positional_embeddings: 9, attention_pooling_out_layer: false });
  Object.assign(json.text_config as Record<string, unknown>, { additional_vocab_size: 128, tie_word_embeddings: false });
  return json;
}

/** Chat-marker ids of the tiny vocabulary (<|im_end|> doubles as BOS/EOS, as in Molmo2). */
export const TINY_CHAT_IDS = { imStart: 317, imEnd: 319, pad: 318 };

export function tinyConfig(json: Record<string, unknown> = tinyConfigJson()): Molmo2Config {
  const check = parseMolmo2Config(json, { bos_token_id: TINY_CHAT_IDS.imEnd, eos_token_id: TINY_CHAT_IDS.imEnd, pad_token_id: TINY_CHAT_IDS.pad });
  if (!check.config) throw new Error(`tiny config is invalid: ${[...check.missing, ...check.errors].join('; ')}`);
  return check.config;
}

/** mulberry32: tiny deterministic generator. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Tensors in memory, shaped by the config's tensor table. */
export class MemoryTensors implements TensorSource {
  constructor(readonly tensors: Map<string, { shape: number[]; data: Float32Array }>) {}

  shape(name: string): number[] {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`no tensor named ${name}`);
    return t.shape;
  }

  async read(name: string): Promise<Float32Array> {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`no tensor named ${name}`);
    return t.data.slice();
  }

  /** A copy whose tensor `name` is transformed by `edit`. */
  with(name: string, edit: (data: Float32Array) => void): MemoryTensors {
    const copy = new Map(this.tensors);
    const t = this.tensors.get(name);
    if (!t) throw new Error(`no tensor named ${name}`);
    const data = t.data.slice();
    edit(data);
    copy.set(name, { shape: t.shape, data });
    return new MemoryTensors(copy);
  }
}

/**
 * Random weights for every tensor of the config: linear weights ~ N(0, 1/fan_in), biases small,
 * norm weights near 1, embeddings ~ N(0, 1), so activations stay O(1) through the tiny model.
 */
export function randomTensors(config: Molmo2Config, seed = 1): MemoryTensors {
  const next = rng(seed);
  const normal = () => Math.sqrt(-2 * Math.log(next() + 1e-12)) * Math.cos(2 * Math.PI * next());
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, shape] of expectedTensors(config)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    const isNorm = /norm|ln_f/.test(name);
    let scale: number;
    let offset = 0;
    if (isNorm) {
      scale = 0.1;
      offset = name.endsWith('.bias') ? 0 : 1;
    } else if (name.endsWith('.bias')) scale = 0.1;
    else if (name.includes('.wte.')) scale = 1;
    else if (name.includes('positional')) scale = 0.5;
    else scale = shape.length > 1 ? 1 / Math.sqrt(shape[1]) : 1; // a learned vector (MolmoPoint's no-more-points key)
    for (let i = 0; i < size; i++) data[i] = offset + scale * normal();
    out.set(name, { shape, data });
  }
  return new MemoryTensors(out);
}

/**
 * A character-level tokenizer for the tiny vocabulary: `<|im_start|>` / `<|im_end|>` map to their
 * ids, every other character to 1 + (code % 300).
 */
export const tinyTokenizer = {
  encode(text: string): number[] {
    const ids: number[] = [];
    for (const part of text.split(/(<\|im_start\|>|<\|im_end\|>)/)) {
      if (part === '<|im_start|>') ids.push(TINY_CHAT_IDS.imStart);
      else if (part === '<|im_end|>') ids.push(TINY_CHAT_IDS.imEnd);
      else for (const ch of part) ids.push(1 + ((ch.codePointAt(0) ?? 0) % 300));
    }
    return ids;
  },
};

/** max |a − ref| / max |ref|: how far a runtime's outputs are from the reference's. */
export function maxRelativeError(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (a.length !== ref.length) throw new Error(`${a.length} values compared with ${ref.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - ref[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return diff / scale;
}

/** Values of one 378² crop in pixel_values ([729, 588]). */
export const CROP_VALUES = 729 * 588;

/** Deterministic test picture (RGB, w×h); `s` varies it. */
export function testPicture(w: number, h: number, s: number): Uint8Array {
  return Uint8Array.from({ length: w * h * 3 }, (_, i) => ((i % (w * 3)) * 7 + Math.floor(i / (w * 3)) * 13 + s * 71 + ((i * s) % 29) * 5) & 255);
}

export interface PromptCase {
  prompt: BuiltPrompt;
  pixels: Float32Array;
}

/** A follow-up question about a video of 50×30 frames made from `seeds`, sampled every 0.5 s. */
export function videoTestCase(config: Molmo2Config, seeds: number[]): PromptCase {
  const prompt = buildPrompt({
    tokenizer: tinyTokenizer,
    chatTemplate: molmo2ChatTemplate(),
    tokens: config.tokens,
    visual: { kind: 'video', timestamps: seeds.map((_, i) => i / 2) },
    conversation: { question: 'Track the car.', history: [{ question: 'Count cars', answer: 'Two.' }] },
  });
  const pixels = new Float32Array(seeds.length * CROP_VALUES);
  seeds.forEach((s, f) => pixels.set(videoFramePixelValues(testPicture(50, 30, s), 50, 30), f * CROP_VALUES));
  return { prompt, pixels };
}

/** Two images (200×100 and 600×130, whose grids need padded pooling windows) and a pointing question. */
export function twoImageTestCase(config: Molmo2Config): PromptCase {
  const sizes = [
    [200, 100],
    [600, 130],
  ];
  const plans = sizes.map(([w, h]) => planImage(w, h));
  const prompt = buildPrompt({ tokenizer: tinyTokenizer, chatTemplate: molmo2ChatTemplate(), tokens: config.tokens, visual: { kind: 'images', plans }, conversation: { question: 'Point to the boats.' } });
  const pixels = new Float32Array(prompt.numCrops * CROP_VALUES);
  let at = 0;
  sizes.forEach(([w, h], k) => {
    pixels.set(imagePixelValues(testPicture(w, h, 5 + k), w, h), at * CROP_VALUES);
    at += plans[k].numCrops;
  });
  return { prompt, pixels };
}

/**
 * `source` with decoder layer 0's MLP norm scaled by 2000 and the projector's w1 and w3 by 500: the
 * SwiGLU products (and the decoder's residual update after its product) leave fp16's range, while
 * every input of a linear layer before them stays in range. For the fp16 guard's tests and the
 * device check.
 */
export function overflowingTensors(source: MemoryTensors): MemoryTensors {
  const t = new Map(source.tensors);
  const scale = (name: string, by: number) => {
    const w = t.get(name);
    if (!w) throw new Error(`no tensor named ${name}`);
    t.set(name, { shape: w.shape, data: w.data.map((v) => v * by) });
  };
  scale(`${names.block(0)}.ff_norm.weight`, 2000);
  scale(`${names.projector}.w1.weight`, 500);
  scale(`${names.projector}.w3.weight`, 500);
  return new MemoryTensors(t);
}
