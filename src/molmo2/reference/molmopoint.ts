// Independent fp32 reference of MolmoPoint (allenai/molmo2 olmo/hf_model/modeling_molmo_point.py,
// MolmoPointForConditionalGeneration), one sequence at a time: Molmo2's ViT and decoder
// (vision.ts, decoder.ts) with MolmoPoint's connector, the point head (point-head.ts), the
// composition of its logits over the generated vocabulary, the input embedding of generated
// grounding ids, and greedy decoding under MolmoPointLogitProcessor's rules (molmopoint/points.ts).
//
// The generated vocabulary: the lm head's rows (base vocabulary + 128), then one id per image token
// (pooling row) and "no more points", one per slot of a pooling window, and 9 locations.
//
// Where the training code (olmo/models/molmo_point/) differs, the remote code is followed: `<im_low>`
// tokens get their own embedding row (training's shared_low_high_embedding gives them `<im_patch>`'s);
// a generated patch always gets its image feature (the remote code's `should_embed` compares the
// relative patch id with an absolute bound, so it is just "is a patch"). Cases the remote code cannot
// run are refused rather than guessed: patch_location null fails there at the first subpatch (no
// location head, and its logits processor has no rule after a subpatch), as constrainPointLogits does.
import type { Molmo2Config } from '../config.ts';
import { constrainPointLogits, pointTokenBounds, type PointTokenBounds } from '../molmopoint/points.ts';
import { decodeLayers, embed, embeddingRow, emptyCache, finalNorm, loadDecoderWeights, logits, type DecoderWeights, type KvCache } from './decoder.ts';
import { argmax } from './ops.ts';
import {
  buildPointKeys,
  loadPointHeadWeights,
  locationLogits,
  patchLogits,
  POINT_SMALL,
  pointInput,
  pointOf,
  subpatchEmbedding,
  subpatchLogits,
  type PointHeadWeights,
  type PointKeys,
} from './point-head.ts';
import { gatherWindows, loadVisionWeights, poolAndProject, vitFeatures, type VisionWeights } from './vision.ts';
import { Weights, type TensorSource } from './weights.ts';

/** The visual part of a prompt as the point head needs it (from `encodeImages`). */
export interface PointImages {
  /** [T, P, vitWidth]: ViT features of each pooling window, zero at padded slots. */
  windows: Float32Array;
  /** [T, d]: the connector's output, added to the T image tokens in order. */
  features0: Float32Array;
  pooledIdx: Int32Array;
  P: number;
}

/** The point head's scores at one token, where the remote code computes them. */
export interface PointScores {
  /** [nPatches (+1)]: at every generated token (not at the prefill). */
  patch?: Float32Array;
  /** [P]: at a generated patch id. */
  subpatch?: Float32Array;
  /** [9]: at a generated subpatch id. */
  location?: Float32Array;
}

export interface PointStep extends PointScores {
  /** Scores of every id of the generated vocabulary (composeLogits). */
  logits: Float32Array;
  /** [d]: the decoder's state before its final norm at this token, which the point head reads. */
  preNorm: Float32Array;
}

/** Generation state after a prefill: the KV cache, the point head's keys and what was generated. */
export interface PointSession {
  cache: KvCache;
  keys: PointKeys;
  bounds: PointTokenBounds;
  /** The pooling row of the last patch id fed in, −1 before any (last_predicted_patch_id). */
  lastPatch: number;
  /** Prompt and generated ids so far (what the logits processor reads). */
  ids: number[];
}

export interface PointGenerateOptions {
  inputIds: ArrayLike<number>;
  tokenTypeIds: ArrayLike<number>;
  images: PointImages;
  maxNewTokens: number;
  eosId?: number;
  /** Apply MolmoPointLogitProcessor's rules (default true, as the model card asks). */
  constrain?: boolean;
}

export interface PointGenerateResult {
  tokens: number[];
  /** The scores that chose each token, after the rules. */
  stepLogits: Float32Array[];
  stoppedAtEos: boolean;
  session: PointSession;
}

/**
 * MolmoPointForConditionalGeneration.forward's logits for one position: the lm head's logits `lm`
 * with the three grounding tokens' own entries set to −1e5; then the patch block, where the patch
 * token's logit goes to the best-scoring patch (the remote code's stand-in for choosing "a patch"
 * and then which one), −1e5 elsewhere; then the subpatch and 9 location scores, or −1e5.
 */
export function composeLogits(c: Molmo2Config, lm: Float32Array, scores: PointScores, bounds: PointTokenBounds): Float32Array {
  const p = pointOf(c);
  if (lm.length !== bounds.patchStart) throw new Error(`the lm head gives ${lm.length} logits but grounding ids start at ${bounds.patchStart}`);
  const nKeys = bounds.patchEnd - bounds.patchStart;
  const out = new Float32Array(lm.length + nKeys + bounds.nSubpatches + 9).fill(POINT_SMALL);
  out.set(lm);
  const patchToken = lm[p.patchTokenId];
  for (const id of [p.patchTokenId, p.subpatchTokenId, p.locationTokenId]) out[id] = POINT_SMALL;
  if (scores.patch) out[bounds.patchStart + argmax(scores.patch)] = patchToken;
  if (scores.subpatch) out.set(scores.subpatch, bounds.subpatchStart);
  // Nine location entries follow even without a location head (then all −1e5).
  if (scores.location) out.set(scores.location, bounds.subpatchEnd);
  return out;
}

export class MolmoPointReference {
  private constructor(
    readonly config: Molmo2Config,
    private readonly vision: VisionWeights,
    private readonly decoder: DecoderWeights,
    private readonly head: PointHeadWeights,
  ) {}

  /** Reads every tensor the forward pass needs, checking names and shapes against the config. */
  static async load(config: Molmo2Config, source: TensorSource): Promise<MolmoPointReference> {
    pointOf(config);
    const w = new Weights(config, source);
    return new MolmoPointReference(config, await loadVisionWeights(config, w), await loadDecoderWeights(config, w), await loadPointHeadWeights(config, w));
  }

  /**
   * ViT, pooling windows and connector of a prompt's crops: pixel_values [nCrops, patches, patchDim]
   * and pooledIdx [T, P] (prompt.pooledIdx, one row per image token).
   */
  encodeImages(pixelValues: Float32Array, nCrops: number, pooledIdx: Int32Array, P: number): PointImages {
    const c = this.config;
    const vit = vitFeatures(c, this.vision, pixelValues, nCrops);
    const windows = gatherWindows(vit, c.vit.hiddenSize * c.adapter.vitLayers.length, pooledIdx, P);
    const features0 = poolAndProject(c, this.vision, vit, pooledIdx, P);
    // The remote code adds the connector rows to the image tokens one to one, and indexes them by patch id.
    if (features0.length / c.text.hiddenSize !== pooledIdx.length / P) throw new Error('a pooling row has no ViT patch: its image token would get no feature');
    return { windows, features0, pooledIdx, P };
  }

  /** Where the grounding ids of a prompt with these images lie. */
  bounds(images: Pick<PointImages, 'pooledIdx' | 'P'>): PointTokenBounds {
    const c = this.config;
    const p = pointOf(c);
    return pointTokenBounds({
      firstId: c.text.vocabSize + c.text.additionalVocabSize,
      nPatches: images.pooledIdx.length / images.P,
      nSubpatches: images.P,
      locations: p.patchLocation === '3x3',
      noMorePointsClass: p.noMorePointsClass,
    });
  }

  /**
   * The prompt in one chunk under Molmo2's prefill mask; builds the point head's keys from the
   * pre-norm states of the image tokens. The last position's logits have no point scores (the
   * remote code scores points only once its keys are cached), so the first answer token is never a
   * grounding id.
   */
  prefill(inputIds: ArrayLike<number>, tokenTypeIds: ArrayLike<number>, images: PointImages): { session: PointSession; step: PointStep } {
    const c = this.config;
    const d = c.text.hiddenSize;
    if (inputIds.length === 0) throw new Error('the prompt is empty');
    if (tokenTypeIds.length !== inputIds.length) throw new Error(`token_type_ids has ${tokenTypeIds.length} entries for ${inputIds.length} tokens`);
    const cache = emptyCache(c);
    const hidden = decodeLayers(c, this.decoder, embed(c, this.decoder, inputIds, images.features0), cache, tokenTypeIds, true);
    const keys = buildPointKeys(c, this.head, hidden, inputIds, images);
    const bounds = this.bounds(images);
    const last = hidden.slice(hidden.length - d);
    const lm = logits(c, this.decoder, finalNorm(c, this.decoder, last));
    const session: PointSession = { cache, keys, bounds, lastPatch: -1, ids: Array.from(inputIds) };
    return { session, step: { logits: composeLogits(c, lm, {}, bounds), preNorm: last } };
  }

  /**
   * The input embedding of a generated id: a patch → `<|token_index|>`'s row + that image token's
   * connector feature; "no more points" → `<|token_index|>`'s row; a subpatch →
   * build_vit_embedding(ViT features of that slot of the last patch's window), replacing the row;
   * a location → `<|vit_loc|>`'s row; anything else its own row.
   */
  embedGenerated(session: PointSession, id: number): Float32Array {
    const c = this.config;
    const p = pointOf(c);
    const b = session.bounds;
    const d = c.text.hiddenSize;
    // Rows are copied: the caller may change what it gets.
    const row = (tokenId: number) => embeddingRow(c, this.decoder, tokenId).slice();
    if (id >= b.patchStart && id < b.patchEndWithoutNoMorePoints) {
      const x = row(p.patchTokenId);
      const patch = id - b.patchStart;
      for (let i = 0; i < d; i++) x[i] += session.keys.features0[patch * d + i];
      return x;
    }
    if (id === b.noMorePoints) return row(p.patchTokenId);
    if (id >= b.subpatchStart && id < b.subpatchEnd) {
      if (session.lastPatch < 0) throw new Error('a subpatch id before any patch id');
      return subpatchEmbedding(c, this.head, session.keys, session.lastPatch, id - b.subpatchStart);
    }
    if (id >= b.locationStart && id < b.locationEnd) return row(p.locationTokenId);
    // Image tokens the lm head can name (its 128 new rows) get no image feature in a decode step.
    return row(id);
  }

  /** Feeds one generated id (purely causal) and returns the next token's scores. */
  step(session: PointSession, id: number): PointStep {
    const c = this.config;
    const b = session.bounds;
    const x = this.embedGenerated(session, id);
    const hidden = decodeLayers(c, this.decoder, x, session.cache, new Uint8Array(session.cache.length + 1), false);
    const lm = logits(c, this.decoder, finalNorm(c, this.decoder, hidden));
    const xHat = pointInput(c, this.head, hidden);
    const isPatch = id >= b.patchStart && id < b.patchEndWithoutNoMorePoints;
    const isSubpatch = id >= b.subpatchStart && id < b.subpatchEnd;
    // The query turns by the last patch fed in *before* this token (the model's input state).
    const scores: PointScores = { patch: patchLogits(c, this.head, session.keys, xHat, session.lastPatch) };
    if (isPatch) scores.subpatch = subpatchLogits(c, this.head, session.keys, xHat, id - b.patchStart);
    if (isSubpatch && this.head.location) scores.location = locationLogits(c, this.head, hidden);
    if (isPatch) session.lastPatch = id - b.patchStart;
    session.ids.push(id);
    return { ...scores, logits: composeLogits(c, lm, scores, b), preNorm: hidden };
  }

  /** Greedy decoding with a KV cache until EOS or maxNewTokens, under the checkpoint's point rules. */
  generateGreedy(o: PointGenerateOptions): PointGenerateResult {
    if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 1) throw new Error(`maxNewTokens must be a positive integer, got ${o.maxNewTokens}`);
    const rules = pointOf(this.config).rules;
    const eos = o.eosId ?? this.config.tokens.eos;
    const { session, step: first } = this.prefill(o.inputIds, o.tokenTypeIds, o.images);
    const result: PointGenerateResult = { tokens: [], stepLogits: [], stoppedAtEos: false, session };
    let step = first;
    for (;;) {
      const scores = step.logits.slice();
      if (o.constrain !== false) constrainPointLogits(session.bounds, session.ids, scores, rules);
      const token = argmax(scores);
      result.tokens.push(token);
      result.stepLogits.push(scores);
      if (token === eos) {
        result.stoppedAtEos = true;
        break;
      }
      if (result.tokens.length >= o.maxNewTokens) break;
      step = this.step(session, token);
    }
    return result;
  }
}

/**
 * The answer text of generated ids as the checkpoint's tokenizer writes it: grounding ids as
 * `<POINT_k>` (k counted from the first id past the vocabulary: plain added tokens), the rest by
 * `text`. What extractImagePoints / extractVideoPoints read.
 */
export function groundingText(ids: readonly number[], bounds: PointTokenBounds, text: (ids: number[]) => string): string {
  let out = '';
  let run: number[] = [];
  for (const id of ids) {
    if (id < bounds.patchStart) {
      run.push(id);
      continue;
    }
    out += text(run) + `<POINT_${id - bounds.patchStart}>`;
    run = [];
  }
  return out + text(run);
}
