// Input and output names of the converted graphs: the contract between the converter's graph
// builders and the runtimes (onnxruntime-node in tests, onnxruntime-web in the worker).
//
// Vision graph:
//   pixel_values   float32 [n_crops, 729, 588]  patches, (row-in-patch, col-in-patch, channel) order, normalised to [-1, 1]
//   pooled_idx     int64   [T, P]               rows of the flattened [n_crops·729] ViT features; −1 = padding
//   → image_features float32 [T, d_model]        one row per <im_patch> token, in token order
//
// Decoder graph (Qwen3 with Molmo2's embedding and prefill mask):
//   input_ids       int64   [1, S]
//   image_features  float32 [F, d_model]        added to the embeddings of the F <im_patch> tokens in input_ids (F may be 0)
//   token_type_ids  int64   [1, P + S]           1 for image-special tokens over past and new positions (prefill mask)
//   past_key_values.{i}.key / .value             KV cache of layer i, [1, kv_heads, P, head_dim]
//   → logits        float32 [1, vocab]           last position only
//   → present.{i}.key / .value                   [1, kv_heads, P + S, head_dim]
// KV cache tensors use the variant's activation type: float16 for q4f16 / fp16, float32 for q4 / fp32.
// Targets may add inputs (e.g. fixed-capacity cache lengths for WebGPU); they are listed next to
// the builder that adds them.

export const VISION_INPUTS = { pixelValues: 'pixel_values', pooledIdx: 'pooled_idx' } as const;
export const VISION_OUTPUTS = { imageFeatures: 'image_features' } as const;

export const DECODER_INPUTS = {
  inputIds: 'input_ids',
  imageFeatures: 'image_features',
  tokenTypeIds: 'token_type_ids',
  pastKey: (i: number) => `past_key_values.${i}.key`,
  pastValue: (i: number) => `past_key_values.${i}.value`,
} as const;

export const DECODER_OUTPUTS = {
  logits: 'logits',
  presentKey: (i: number) => `present.${i}.key`,
  presentValue: (i: number) => `present.${i}.value`,
} as const;

// WebGPU-target decoder (decoder-webgpu.ts): a fixed-capacity KV cache updated in place.
//   past_key_values.{i}.key / .value   [1, kv_heads, max_cache_length, head_dim]; the runtime binds the
//                                      same GPU buffers as present.{i}.key / .value (share-buffer)
//   position_ids          int64 [1, S]   absolute positions P .. P+S−1 of the new tokens
//   seqlens_k             int32 [1]      P + S − 1
//   total_sequence_length int32 []       P + S (valid cache length after this step)
//   → next_token          int64 [1]      argmax of logits (the only value a decode step reads back)
export const WEBGPU_DECODER_INPUTS = {
  positionIds: 'position_ids',
  seqlensK: 'seqlens_k',
  totalSequenceLength: 'total_sequence_length',
} as const;

export const WEBGPU_DECODER_OUTPUTS = { nextToken: 'next_token' } as const;
