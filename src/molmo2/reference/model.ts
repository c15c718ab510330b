// The fp32 reference model: vision features, decoder logits along a whole sequence, and greedy
// generation with a KV cache. Slow loops, meant for tiny checkpoints and for checking other runtimes.
import type { Molmo2Config } from '../config.ts';
import { decode, embed, emptyCache, loadDecoderWeights, logits, type DecoderWeights, type KvCache } from './decoder.ts';
import { argmax } from './ops.ts';
import { loadVisionWeights, poolAndProject, vitFeatures, type VisionWeights } from './vision.ts';
import { Weights, type TensorSource } from './weights.ts';

export interface GenerateOptions {
  inputIds: ArrayLike<number>;
  /** [#<im_patch>, d_model] rows from visionFeatures (empty for text-only prompts). */
  imageFeatures: Float32Array;
  tokenTypeIds: ArrayLike<number>;
  maxNewTokens: number;
  /** Stop token; defaults to the config's EOS (`<|im_end|>`). */
  eosId?: number;
}

export interface GenerateResult {
  /** Generated ids, including the EOS when it was produced. */
  tokens: number[];
  /** stepLogits[k] = the [vocab] logits that chose tokens[k]. */
  stepLogits: Float32Array[];
  stoppedAtEos: boolean;
}

export class ReferenceModel {
  private constructor(
    readonly config: Molmo2Config,
    private readonly vision: VisionWeights,
    private readonly decoder: DecoderWeights,
  ) {}

  /** Reads every tensor the forward pass needs, checking names and shapes against the config. */
  static async load(config: Molmo2Config, source: TensorSource): Promise<ReferenceModel> {
    // MolmoPoint's logits and generated ids need its point head (molmopoint.ts).
    if (config.point) throw new Error('a MolmoPoint checkpoint runs in MolmoPointReference, not ReferenceModel');
    const w = new Weights(config, source);
    return new ReferenceModel(config, await loadVisionWeights(config, w), await loadDecoderWeights(config, w));
  }

  /** ViT features of every crop, [nCrops·patches, vitLayers.length·vitHidden]. */
  vitFeatures(pixelValues: Float32Array, nCrops: number): Float32Array {
    return vitFeatures(this.config, this.vision, pixelValues, nCrops);
  }

  /** Attention pooling + projector over given ViT features: [T, d_model]. */
  poolAndProject(features: Float32Array, pooledIdx: Int32Array, P: number): Float32Array {
    return poolAndProject(this.config, this.vision, features, pooledIdx, P);
  }

  /**
   * Image features for a prompt: pixel_values [nCrops, patches, patchDim] of all its crops/frames and
   * pooledIdx [T, P] into their flattened patches → [T, d_model], one row per <im_patch> token.
   */
  visionFeatures(pixelValues: Float32Array, nCrops: number, pooledIdx: Int32Array, P: number): Float32Array {
    return this.poolAndProject(this.vitFeatures(pixelValues, nCrops), pooledIdx, P);
  }

  /** Input embeddings with image features added at the <im_patch> tokens: [S, d_model]. */
  embed(inputIds: ArrayLike<number>, imageFeatures: Float32Array): Float32Array {
    return embed(this.config, this.decoder, inputIds, imageFeatures);
  }

  /** Logits at every position of a prefill under the Molmo2 mask: [S, vocab]. */
  decoderLogits(inputIds: ArrayLike<number>, imageFeatures: Float32Array, tokenTypeIds: ArrayLike<number>): Float32Array {
    this.checkSequence(inputIds, tokenTypeIds);
    const hidden = decode(this.config, this.decoder, this.embed(inputIds, imageFeatures), emptyCache(this.config), tokenTypeIds, true);
    return logits(this.config, this.decoder, hidden);
  }

  /** Prefill in one chunk; returns the cache and the last position's logits. */
  prefill(inputIds: ArrayLike<number>, imageFeatures: Float32Array, tokenTypeIds: ArrayLike<number>): { cache: KvCache; logits: Float32Array } {
    this.checkSequence(inputIds, tokenTypeIds);
    const cache = emptyCache(this.config);
    const hidden = decode(this.config, this.decoder, this.embed(inputIds, imageFeatures), cache, tokenTypeIds, true);
    const d = this.config.text.hiddenSize;
    return { cache, logits: logits(this.config, this.decoder, hidden.subarray(hidden.length - d)) };
  }

  /** One decode step (purely causal) for a generated token; returns its [vocab] logits. */
  decodeStep(cache: KvCache, tokenId: number): Float32Array {
    const hidden = decode(this.config, this.decoder, this.embed([tokenId], new Float32Array(0)), cache, new Uint8Array(cache.length + 1), false);
    return logits(this.config, this.decoder, hidden);
  }

  /** Greedy decoding with a KV cache until EOS or maxNewTokens. */
  generateGreedy(o: GenerateOptions): GenerateResult {
    if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 1) throw new Error(`maxNewTokens must be a positive integer, got ${o.maxNewTokens}`);
    const eos = o.eosId ?? this.config.tokens.eos;
    const { cache, logits: first } = this.prefill(o.inputIds, o.imageFeatures, o.tokenTypeIds);
    const result: GenerateResult = { tokens: [], stepLogits: [], stoppedAtEos: false };
    let step = first;
    for (;;) {
      const token = argmax(step);
      result.tokens.push(token);
      result.stepLogits.push(step);
      if (token === eos) {
        result.stoppedAtEos = true;
        break;
      }
      if (result.tokens.length >= o.maxNewTokens) break;
      step = this.decodeStep(cache, token);
    }
    return result;
  }

  private checkSequence(inputIds: ArrayLike<number>, tokenTypeIds: ArrayLike<number>): void {
    if (inputIds.length === 0) throw new Error('the prompt is empty');
    if (tokenTypeIds.length !== inputIds.length) throw new Error(`token_type_ids has ${tokenTypeIds.length} entries for ${inputIds.length} tokens`);
  }
}
