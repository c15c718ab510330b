// Runs the decoder graph one step at a time and owns its KV cache. Two graph kinds:
//
// - static  (WebGPU-target graphs, see decoder-webgpu.ts): one fixed GPU buffer per layer for K and
//   one for V, [1, kv_heads, max_context, head_dim], bound both as the `past_key_values.*` input and
//   as the `present.*` output, so the cache is updated in place with no allocation per token. The
//   graph also takes position_ids / seqlens_k / total_sequence_length and returns `next_token`.
// - dynamic (the CPU-target graphs of io.ts): the cache grows by concatenation; `present.*` outputs
//   stay on the GPU (gpu-buffer) and are fed back as the next step's past, the old ones disposed.
//
// Either way only the next token id (static) or the last logits row (dynamic) is read back per step.
import { fromFloat16 } from '../molmo2/fp16.ts';
import { DECODER_INPUTS, DECODER_OUTPUTS, WEBGPU_DECODER_INPUTS, WEBGPU_DECODER_OUTPUTS } from '../molmo2/onnx/io.ts';
import { ort } from './ort.ts';
import { inputShape, inputType } from './sessions.ts';

export interface DecoderDims {
  layers: number;
  kvHeads: number;
  headDim: number;
  hidden: number;
}

export interface StepResult {
  next: number;
  /** The last position's logits, when asked for. */
  logits?: Float32Array;
}

export interface DecoderRunner {
  readonly kind: 'static' | 'dynamic';
  readonly maxContext: number;
  /** Tokens in the cache. */
  readonly length: number;
  /** Token ids and types of the cached positions (views, valid until the next step). */
  contents(): { ids: Int32Array; types: Uint8Array };
  /** Empties the cache (the next step is a prefill). */
  reset(): void;
  /**
   * Keeps the first `n` cached tokens and drops the rest, so the next step continues after them
   * (prefix reuse). False when this cache cannot be cut there (then nothing changes).
   */
  keep(n: number): boolean;
  /**
   * Runs `ids` after the cached tokens. `types` are the new tokens' types (1 = image-special token,
   * for the prefill mask). `imageFeatures` is [F, hidden] for the F <im_patch> tokens among `ids`
   * (prefill), or undefined.
   */
  step(ids: ArrayLike<number>, types: ArrayLike<number>, imageFeatures: ort.Tensor | undefined, wantLogits: boolean): Promise<StepResult>;
  dispose(): void;
}

const STATIC_INPUTS = WEBGPU_DECODER_INPUTS;
const NEXT_TOKEN_OUTPUT = WEBGPU_DECODER_OUTPUTS.nextToken;

/** Output placement for a decoder session: caches on the GPU, the small results on the CPU. */
export function decoderOutputLocations(layers: number): Record<string, ort.Tensor.DataLocation> {
  const loc: Record<string, ort.Tensor.DataLocation> = { [DECODER_OUTPUTS.logits]: 'cpu', [NEXT_TOKEN_OUTPUT]: 'cpu' };
  for (let i = 0; i < layers; i++) {
    loc[DECODER_OUTPUTS.presentKey(i)] = 'gpu-buffer';
    loc[DECODER_OUTPUTS.presentValue(i)] = 'gpu-buffer';
  }
  return loc;
}

export function isStaticDecoder(session: ort.InferenceSession): boolean {
  return session.inputNames.includes(STATIC_INPUTS.seqlensK);
}

function int64(values: ArrayLike<number>, dims: number[]): ort.Tensor {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]);
  return new ort.Tensor('int64', data, dims);
}

function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

function floatTensor(type: ort.Tensor.Type, dims: number[]): ort.Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  if (type === 'float16') return new ort.Tensor('float16', new Uint16Array(n), dims);
  return new ort.Tensor('float32', new Float32Array(n), dims);
}

async function readLogits(t: ort.Tensor): Promise<Float32Array> {
  const data = await t.getData();
  if (data instanceof Float32Array) return data;
  if (data instanceof Uint16Array) return fromFloat16(data);
  throw new Error(`logits have an unexpected type ${t.type}`);
}

abstract class BaseRunner {
  protected readonly featureType: ort.Tensor.Type;
  protected readonly kvType: ort.Tensor.Type;
  /** Ids and types of every cached position; types also as int64 so a step sends a view, not a copy. */
  private readonly ids: Int32Array;
  private readonly types: Uint8Array;
  private readonly types64: BigInt64Array;
  private readonly noFeatures: ort.Tensor;
  length = 0;

  constructor(
    protected readonly session: ort.InferenceSession,
    protected readonly dims: DecoderDims,
    readonly maxContext: number,
  ) {
    this.featureType = inputType(session, DECODER_INPUTS.imageFeatures) ?? 'float32';
    this.kvType = inputType(session, DECODER_INPUTS.pastKey(0)) ?? 'float32';
    this.ids = new Int32Array(maxContext);
    this.types = new Uint8Array(maxContext);
    this.types64 = new BigInt64Array(maxContext);
    this.noFeatures = floatTensor(this.featureType, [0, this.dims.hidden]);
  }

  contents(): { ids: Int32Array; types: Uint8Array } {
    return { ids: this.ids.subarray(0, this.length), types: this.types.subarray(0, this.length) };
  }

  protected checkRoom(n: number): void {
    if (this.length + n > this.maxContext) throw new Error(`the context is full (${this.maxContext} tokens)`);
  }

  /** Records the new tokens after the cached ones and returns the feeds every graph kind takes. */
  protected commonFeeds(ids: ArrayLike<number>, types: ArrayLike<number>, imageFeatures: ort.Tensor | undefined): Record<string, ort.Tensor> {
    if (types.length !== ids.length) throw new Error(`internal: ${types.length} token types for ${ids.length} tokens`);
    const total = this.length + ids.length;
    for (let i = 0; i < ids.length; i++) {
      this.ids[this.length + i] = ids[i];
      this.types[this.length + i] = types[i];
      this.types64[this.length + i] = BigInt(types[i]);
    }
    return {
      [DECODER_INPUTS.inputIds]: int64(ids, [1, ids.length]),
      [DECODER_INPUTS.tokenTypeIds]: new ort.Tensor('int64', this.types64.subarray(0, total), [1, total]),
      [DECODER_INPUTS.imageFeatures]: imageFeatures ?? this.noFeatures,
    };
  }
}

class DynamicRunner extends BaseRunner implements DecoderRunner {
  readonly kind = 'dynamic' as const;
  private past: ort.Tensor[] = [];

  reset(): void {
    for (const t of this.past) if (t.location === 'gpu-buffer') t.dispose();
    this.past = [];
    this.length = 0;
  }

  /** A growing cache is one tensor per layer: it can be kept whole or dropped, not cut. */
  keep(n: number): boolean {
    if (n === this.length) return true;
    if (n !== 0) return false;
    this.reset();
    return true;
  }

  async step(ids: ArrayLike<number>, types: ArrayLike<number>, imageFeatures: ort.Tensor | undefined): Promise<StepResult> {
    const { layers, kvHeads, headDim } = this.dims;
    this.checkRoom(ids.length);
    const feeds = this.commonFeeds(ids, types, imageFeatures);
    const empty = this.past.length === 0;
    for (let i = 0; i < layers; i++) {
      feeds[DECODER_INPUTS.pastKey(i)] = empty ? floatTensor(this.kvType, [1, kvHeads, 0, headDim]) : this.past[2 * i];
      feeds[DECODER_INPUTS.pastValue(i)] = empty ? floatTensor(this.kvType, [1, kvHeads, 0, headDim]) : this.past[2 * i + 1];
    }
    const out = await this.session.run(feeds);
    const next: ort.Tensor[] = [];
    for (let i = 0; i < layers; i++) next.push(out[DECODER_OUTPUTS.presentKey(i)], out[DECODER_OUTPUTS.presentValue(i)]);
    for (const t of this.past) if (t.location === 'gpu-buffer') t.dispose();
    this.past = next;
    this.length += ids.length;
    const logits = await readLogits(out[DECODER_OUTPUTS.logits]);
    return { next: argmax(logits), logits };
  }

  dispose(): void {
    this.reset();
  }
}

class StaticRunner extends BaseRunner implements DecoderRunner {
  readonly kind = 'static' as const;
  private readonly buffers: GPUBuffer[] = [];
  private readonly hasNextToken: boolean;
  /** Feeds and fetches bound once: the cache tensors never change, only the small per-step inputs. */
  private readonly cacheFeeds: Record<string, ort.Tensor> = {};
  private readonly fetches: Record<string, ort.Tensor | null> = {};
  private readonly seqlensK = new Int32Array(1);
  private readonly totalLength = new Int32Array(1);
  private readonly seqlensTensor: ort.Tensor;
  private readonly totalTensor: ort.Tensor;

  constructor(session: ort.InferenceSession, dims: DecoderDims, maxContext: number, device: GPUDevice) {
    super(session, dims, maxContext);
    const { layers, kvHeads, headDim } = dims;
    const bytes = kvHeads * maxContext * headDim * (this.kvType === 'float16' ? 2 : 4);
    const fixed = inputShape(session, DECODER_INPUTS.pastKey(0))?.[2];
    if (typeof fixed === 'number' && fixed !== maxContext) throw new Error(`the decoder graph's cache holds ${fixed} tokens, not ${maxContext}`);
    for (let i = 0; i < layers; i++) {
      const [key, value] = [0, 1].map(() => {
        const buf = device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
        this.buffers.push(buf);
        return ort.Tensor.fromGpuBuffer(buf, { dataType: this.kvType as 'float32' | 'float16', dims: [1, kvHeads, maxContext, headDim] });
      });
      this.cacheFeeds[DECODER_INPUTS.pastKey(i)] = key;
      this.cacheFeeds[DECODER_INPUTS.pastValue(i)] = value;
      this.fetches[DECODER_OUTPUTS.presentKey(i)] = key;
      this.fetches[DECODER_OUTPUTS.presentValue(i)] = value;
    }
    this.hasNextToken = session.outputNames.includes(NEXT_TOKEN_OUTPUT);
    if (this.hasNextToken) this.fetches[NEXT_TOKEN_OUTPUT] = null;
    this.seqlensTensor = new ort.Tensor('int32', this.seqlensK, [1]);
    this.totalTensor = new ort.Tensor('int32', this.totalLength, []);
  }

  reset(): void {
    // The valid length travels with every run: stale entries past it are never read.
    this.length = 0;
  }

  keep(n: number): boolean {
    if (!Number.isInteger(n) || n < 0 || n > this.length) return false;
    this.length = n;
    return true;
  }

  async step(ids: ArrayLike<number>, types: ArrayLike<number>, imageFeatures: ort.Tensor | undefined, wantLogits: boolean): Promise<StepResult> {
    this.checkRoom(ids.length);
    const start = this.length;
    const total = start + ids.length;
    const feeds = this.commonFeeds(ids, types, imageFeatures);
    Object.assign(feeds, this.cacheFeeds);
    const positions = new BigInt64Array(ids.length);
    for (let i = 0; i < ids.length; i++) positions[i] = BigInt(start + i);
    feeds[STATIC_INPUTS.positionIds] = new ort.Tensor('int64', positions, [1, ids.length]);
    this.seqlensK[0] = total - 1;
    this.totalLength[0] = total;
    feeds[STATIC_INPUTS.seqlensK] = this.seqlensTensor;
    feeds[STATIC_INPUTS.totalSequenceLength] = this.totalTensor;
    const readLogitsToo = wantLogits || !this.hasNextToken;
    const fetches = readLogitsToo ? { ...this.fetches, [DECODER_OUTPUTS.logits]: null } : this.fetches;
    let out;
    try {
      out = await this.session.run(feeds, fetches);
    } catch (e) {
      // A failed run may have written part of the new positions: only the old ones are known good.
      this.length = start;
      throw e;
    }
    this.length = total;
    const logits = readLogitsToo ? await readLogits(out[DECODER_OUTPUTS.logits]) : undefined;
    const next = this.hasNextToken ? Number((out[NEXT_TOKEN_OUTPUT].data as BigInt64Array)[0]) : argmax(logits!);
    return { next, logits };
  }

  dispose(): void {
    for (const b of this.buffers) b.destroy();
    this.buffers.length = 0;
  }
}

export function createDecoderRunner(session: ort.InferenceSession, dims: DecoderDims, maxContext: number, device: GPUDevice): DecoderRunner {
  return isStaticDecoder(session) ? new StaticRunner(session, dims, maxContext, device) : new DynamicRunner(session, dims, maxContext);
}
