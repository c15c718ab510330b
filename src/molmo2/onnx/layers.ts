// Building blocks shared by the graph builders: weight encoding per dtype, linear layers (MatMulNBits
// int4 / int8 or float MatMul, and the fp16-overflow guard of the MLP down projections), float tables and row lookups, norms computed in float32, casts, activations.
import type { Dtype, VariantPrecision, WeightPrecision } from '../manifest.ts';
import { arrayRef, type BlockEncoding, type EncodedBlock, type WeightRef } from './encode.ts';
import { toFloat16 } from '../fp16.ts';
import type { WeightSlot } from './external-data.ts';
import { float, ONNX_TYPE, type Graph, type TensorType } from './graph.ts';
import { q4RowBytes, q8RowBytes, type Q4Weight } from './quant.ts';

export type FloatType = 'float32' | 'float16';

/** Masked attention scores: far below any real score, finite so a fully masked row gives no NaN. */
export const MASKED = -1e30;

/** How a linear layer's weight is stored: MatMulNBits int4 / int8 blocks, or a float MatMul weight. */
export type WeightFormat = 'q4' | 'q8' | 'float16' | 'float32';

/** What a variant's dtype means for activations and for the linear layers' weights. */
export interface Precision {
  /**
   * Inputs and outputs of the linear layers. The residual streams, norms, softmax, attention and
   * the LM head run in float32 in every variant (see the fp16 guard in the README).
   */
  act: FloatType;
  /** Weights of the decoder's linear layers. */
  linear: WeightFormat;
  /** Weights of the vision encoder's linear layers (ViT, attention pooling, projector). */
  vision: WeightFormat;
  /** Embedding tables and other float weights that are not quantized. */
  table: FloatType;
}

export function precisionOf(dtype: Dtype): Precision {
  switch (dtype) {
    case 'q4f16':
      // int4 in the vision encoder causes most of the grounding drift: it keeps fp16 weights.
      return { act: 'float16', linear: 'q4', vision: 'float16', table: 'float16' };
    case 'q4':
      // fp32 activations for GPUs without shader-f16: the vision encoder in int8 (fp16 weights would
      // need shader-f16, fp32 ones take 1.6 GB for Molmo2-4B); tables stay fp16 (half the bytes) and
      // are cast after the lookup.
      return { act: 'float32', linear: 'q4', vision: 'q8', table: 'float16' };
    case 'q4f16-int4vision':
      return { act: 'float16', linear: 'q4', vision: 'q4', table: 'float16' };
    case 'q4-int4vision':
      return { act: 'float32', linear: 'q4', vision: 'q4', table: 'float16' };
    case 'fp16':
      return { act: 'float16', linear: 'float16', vision: 'float16', table: 'float16' };
    case 'fp32':
      return { act: 'float32', linear: 'float32', vision: 'float32', table: 'float32' };
    default:
      throw new Error(`unknown dtype ${String(dtype)}`);
  }
}

/** What the manifest records of a dtype: each graph's weight precision and the activation type. */
export function variantPrecision(dtype: Dtype): VariantPrecision {
  const p = precisionOf(dtype);
  return { vision: weightPrecisionOf(p.vision), decoder: weightPrecisionOf(p.linear), activations: p.act };
}

/**
 * The stem of a dtype's decoder files: variants that differ only in the vision encoder
 * (`q4f16-int4vision` and `q4f16`) build the same decoder and share `decoder_q4f16`.
 */
export function decoderDtype(dtype: Dtype): Dtype {
  return dtype === 'q4f16-int4vision' ? 'q4f16' : dtype === 'q4-int4vision' ? 'q4' : dtype;
}

/** How a weight format is named in the manifest and the UI. */
export function weightPrecisionOf(format: WeightFormat): WeightPrecision {
  return format === 'q4' ? 'int4' : format === 'q8' ? 'int8' : format;
}

export interface Q4Settings {
  blockSize: number;
  /**
   * MatMulNBits accuracy_level of the decoder: 4 = int8 compute of the activations (DP4A on WebGPU),
   * 0 = in the activation type.
   */
  accuracyLevel: number;
  /** The same for the vision encoder's quantized linears. */
  visionAccuracyLevel: number;
  symmetric: boolean;
}

/**
 * Level 4 in the decoder: ~1.3e-2 relative logit error (onnxruntime-node CPU EP), ten times below the
 * int4 weights' own effect, for 15–50% faster decode steps there and DP4A prefill on GPUs. Level 0 in
 * the vision encoder: int8 activations would add a third to the int8 ViT's feature error (rms 2.6e-2 →
 * 3.4e-2, worst row doubled on the tiny test model), and grounding depends on those features.
 * Figures: bench/REPORT.md (`npm run bench:quant`).
 */
export const DEFAULT_Q4: Q4Settings = { blockSize: 32, accuracyLevel: 4, visionAccuracyLevel: 0, symmetric: true };

/** `values` encoded as `type`: float16 bits, or the float32 values themselves. */
export function floatBytes(values: Float32Array, type: FloatType): Uint16Array | Float32Array {
  return type === 'float16' ? toFloat16(values) : values;
}

/** Casts `x` from `from` to `to`; no node when they are equal. */
export function cast(g: Graph, x: string, from: TensorType, to: TensorType): string {
  return from === to ? x : g.op('Cast', [x], { to: ONNX_TYPE[to] });
}

/** A float weight tensor in `type` (fp32 values converted on the way out). */
export async function floatWeight(g: Graph, name: string, values: Float32Array, dims: number[], type: FloatType): Promise<string> {
  return g.weight(name, type, dims, floatBytes(values, type));
}

/** A float table stored as row blocks (one block unless it exceeds an external-data chunk). */
export interface FloatTable {
  type: FloatType;
  cols: number;
  parts: { name: string; firstRow: number; rows: number }[];
}

/** Float32 values per encoding job (4 MiB): big enough to amortize a job, small enough to pipeline. */
export const JOB_VALUES = 1 << 20;
/**
 * Transposed tiles take columns of many rows (a column band of a large weight is read row by row
 * or cut from whole rows), so they get larger jobs: 64 MiB of float32 values.
 */
const TRANSPOSE_JOB_VALUES = 1 << 24;

/** A weight given either in memory ([rows, cols] row-major) or as a checkpoint tensor to stream. */
export type WeightInput = Float32Array | WeightRef;

function toRef(w: WeightInput, rows: number, cols: number): WeightRef {
  if (w instanceof Float32Array) return arrayRef(w, rows, cols);
  if (w.rows !== rows || w.cols !== cols) throw new Error(`${w.tensor}: [${w.rows}, ${w.cols}] where [${rows}, ${cols}] is needed`);
  return w;
}

/**
 * Submits jobs encoding rows [from, to) of `ref` in blocks; `use(row, block)` stores each block
 * (row relative to `from`). Returns once every job is accepted; the stores run on (g.track).
 * A block whose bytes an interrupted run already wrote (`stored(row, rows)`) is neither read nor encoded.
 */
async function encodeRows(
  g: Graph,
  ref: WeightRef,
  from: number,
  to: number,
  encoding: BlockEncoding,
  use: (row: number, block: EncodedBlock) => Promise<void>,
  stored: (row: number, rows: number) => boolean,
): Promise<void> {
  const rowsPerJob = Math.max(1, Math.floor(JOB_VALUES / ref.cols));
  for (let r0 = from; r0 < to; r0 += rowsPerJob) {
    const r1 = Math.min(to, r0 + rowsPerJob);
    if (stored(r0 - from, r1 - r0)) continue;
    const { done } = await ref.encoder.submit({ tensor: ref.tensor, cols: ref.cols, rowFrom: ref.rowFrom + r0, rowTo: ref.rowFrom + r1, colFrom: 0, colTo: ref.cols, encoding });
    g.track(store(done, (block) => use(r0 - from, block)));
  }
}

async function store(done: Promise<EncodedBlock>, use: (block: EncodedBlock) => Promise<void>): Promise<void> {
  const block = await done;
  try {
    await use(block);
  } finally {
    block.release();
  }
}

/** Copies bytes that wait for the file's write position, so the job's memory goes back at once. */
function putCopy(g: Graph, slot: WeightSlot, at: number, bytes: Uint8Array): void {
  g.track(slot.put(at, bytes.slice()));
}

/**
 * Stores a float table [rows, cols] given as consecutive row-major pieces (e.g. embedding ++
 * new_embedding), split into row blocks that each fit one chunk.
 */
export async function floatTable(g: Graph, name: string, pieces: WeightInput[], cols: number, type: FloatType): Promise<FloatTable> {
  const refs = pieces.map((p) => (p instanceof Float32Array ? toRef(p, p.length / cols, cols) : p));
  const rows = refs.reduce((s, p) => s + p.rows, 0);
  if (!Number.isInteger(rows) || refs.some((r) => r.cols !== cols)) throw new Error(`${name}: the pieces do not form rows of ${cols}`);
  const rowBytes = cols * (type === 'float16' ? 2 : 4);
  const rowsPerPart = Math.max(1, Math.floor(g.maxWeightBytes() / rowBytes));
  const table: FloatTable = { type, cols, parts: [] };
  for (let from = 0, i = 0; from < rows; from += rowsPerPart, i++) {
    const to = Math.min(rows, from + rowsPerPart);
    const slot = await g.weightSlot(rows > rowsPerPart ? `${name}.part${i}` : name, type, [to - from, cols]);
    // The rows of the pieces that fall into [from, to).
    let start = 0;
    for (const ref of refs) {
      const lo = Math.max(from, start);
      const hi = Math.min(to, start + ref.rows);
      if (hi > lo) {
        await encodeRows(
          g,
          ref,
          lo - start,
          hi - start,
          { kind: 'float', type },
          (row, block) => slot.put((lo - from + row) * rowBytes, block.outputs[0]),
          (row, n) => slot.stored((lo - from + row) * rowBytes, n * rowBytes),
        );
      }
      start += ref.rows;
    }
    table.parts.push({ name: slot.name, firstRow: from, rows: to - from });
  }
  await g.settle();
  return table;
}

/** The whole table as one value (a Concat of the blocks when split). */
export function wholeTable(g: Graph, t: FloatTable): string {
  return t.parts.length === 1 ? t.parts[0].name : g.op('Concat', t.parts.map((p) => p.name), { axis: 0 });
}

/**
 * table[ids] (rows appended along a new last axis). A split table is read block by block — each
 * block answers the ids in its range, zeros elsewhere — so no Concat of the weights runs per call.
 */
export function gatherRows(g: Graph, t: FloatTable, ids: string): string {
  if (t.parts.length === 1) return g.op('Gather', [t.parts[0].name, ids], { axis: 0 });
  let sum = '';
  for (const p of t.parts) {
    const local = g.op('Sub', [ids, g.scalarInt64(p.firstRow)]);
    const inside = g.op('And', [g.op('GreaterOrEqual', [local, g.scalarInt64(0)]), g.op('Less', [local, g.scalarInt64(p.rows)])]);
    const rows = g.op('Gather', [p.name, g.op('Where', [inside, local, g.scalarInt64(0)])], { axis: 0 });
    const masked = g.op('Where', [g.op('Unsqueeze', [inside, g.int64([-1])]), rows, g.scalar(t.type, 0)]);
    sum = sum ? g.op('Add', [sum, masked]) : masked;
  }
  return sum;
}

/** [N, K] (torch layout) → [K, N] (MatMul layout). */
export function transpose(w: Float32Array, N: number, K: number): Float32Array {
  const t = new Float32Array(N * K);
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) t[k * N + n] = w[n * K + k];
  return t;
}

export interface LinearSpec {
  /** Prefix of the initializer names. */
  name: string;
  /** [N, K] in torch Linear layout (out features × in features), in memory or streamed from the checkpoint. */
  weight: WeightInput;
  N: number;
  K: number;
  bias?: Float32Array | null;
  format: WeightFormat;
  /** Type of the input and the output. */
  act: FloatType;
  q4?: Q4Settings;
}

/** Int4 rows of a weight in MatMulNBits layout, in external-data slots filled by encoding jobs. */
export interface Q4Slots {
  data: WeightSlot & { name: string };
  scales: WeightSlot & { name: string };
  zeroPoints?: WeightSlot & { name: string };
}

/**
 * Quantizes the rows of `sources` (consecutive, each [*, K]) into `slots`: job outputs go to the
 * rows' places in the data, scales and zero-points tensors.
 */
export async function quantizeRowsInto(g: Graph, sources: { ref: WeightRef; from: number; to: number }[], K: number, q: { blockSize: number; symmetric: boolean; scaleType: FloatType }, slots: Q4Slots): Promise<void> {
  const bytes = q4RowBytes(K, q);
  let row = 0;
  for (const { ref, from, to } of sources) {
    const base = row;
    await encodeRows(
      g,
      ref,
      from,
      to,
      { kind: 'q4', ...q },
      async (r, block) => {
        // Scales and zero points follow all of the data in the file: copy them and move on.
        putCopy(g, slots.scales, (base + r) * bytes.scales, block.outputs[1]);
        if (slots.zeroPoints) putCopy(g, slots.zeroPoints, (base + r) * bytes.zeroPoints, block.outputs[2]);
        await slots.data.put((base + r) * bytes.packed, block.outputs[0]);
      },
      (r, n) => rowsStored(slots, bytes, base + r, n),
    );
    row += to - from;
  }
}

/** Rows [from, to) of `ref` as 8-bit blocks into `slots` (codes and scales at the rows' places). */
async function quantizeRowsInto8(g: Graph, ref: WeightRef, from: number, to: number, K: number, q: { blockSize: number; scaleType: FloatType }, slots: Q4Slots): Promise<void> {
  const bytes = q8RowBytes(K, q);
  await encodeRows(
    g,
    ref,
    from,
    to,
    { kind: 'q8', ...q },
    async (r, block) => {
      putCopy(g, slots.scales, r * bytes.scales, block.outputs[1]);
      await slots.data.put(r * bytes.packed, block.outputs[0]);
    },
    (r, n) => rowsStored(slots, { ...bytes, zeroPoints: 0 }, r, n),
  );
}

/** True when rows [row, row + n) of every tensor of `slots` are already in their files. */
function rowsStored(slots: Q4Slots, bytes: { packed: number; scales: number; zeroPoints: number }, row: number, n: number): boolean {
  return (
    slots.data.stored(row * bytes.packed, n * bytes.packed) &&
    slots.scales.stored(row * bytes.scales, n * bytes.scales) &&
    (!slots.zeroPoints || slots.zeroPoints.stored(row * bytes.zeroPoints, n * bytes.zeroPoints))
  );
}

/**
 * y = x · Wᵀ (+ b) over the last axis of `x`. A weight too large for one external-data chunk is split
 * along N into several MatMuls whose outputs are concatenated.
 */
export async function linear(g: Graph, x: string, s: LinearSpec): Promise<string> {
  const { N, K } = s;
  const weight = s.weight instanceof Float32Array ? s.weight : undefined;
  if (weight && weight.length !== N * K) throw new Error(`${s.name}: weight has ${weight.length} values, expected ${N}×${K}`);
  const ref = toRef(s.weight, N, K);
  if (s.format !== 'q4' && s.format !== 'q8' && s.format !== s.act) throw new Error(`${s.name}: ${s.format} weights need ${s.format} activations, got ${s.act}`);
  const limit = g.maxWeightBytes();
  let y: string;
  if (s.format === 'q4' || s.format === 'q8') {
    const q4 = s.q4 ?? DEFAULT_Q4;
    const bits = s.format === 'q4' ? 4 : 8;
    // 8-bit blocks are always symmetric (implicit zero point 128).
    const symmetric = bits === 8 || q4.symmetric;
    const q = { blockSize: q4.blockSize, symmetric, scaleType: s.act };
    const packedPerRow = bits === 4 ? q4RowBytes(K, q).packed : q8RowBytes(K, q).packed;
    const nb = Math.ceil(K / q.blockSize);
    const rowsPerPart = Math.max(1, Math.floor(limit / packedPerRow));
    const parts: string[] = [];
    for (let from = 0, i = 0; from < N; from += rowsPerPart, i++) {
      const to = Math.min(N, from + rowsPerPart);
      const name = N > rowsPerPart ? `${s.name}.part${i}` : s.name;
      const n = to - from;
      const tag = bits === 4 ? 'q4' : 'q8';
      const slots: Q4Slots = {
        data: await g.weightSlot(`${name}.${tag}.B`, 'uint8', [n, nb, (q.blockSize * bits) / 8]),
        scales: await g.weightSlot(`${name}.${tag}.scales`, s.act, [n * nb]),
      };
      if (!q.symmetric) slots.zeroPoints = await g.weightSlot(`${name}.q4.zero_points`, 'uint8', [n * q4RowBytes(K, q).zeroPoints]);
      if (bits === 4) await quantizeRowsInto(g, [{ ref, from, to }], K, q, slots);
      else await quantizeRowsInto8(g, ref, from, to, K, { blockSize: q.blockSize, scaleType: s.act }, slots);
      const inputs = [x, slots.data.name, slots.scales.name];
      if (slots.zeroPoints) inputs.push(slots.zeroPoints.name);
      parts.push(g.ms('MatMulNBits', inputs, { K, N: n, bits, block_size: q.blockSize, accuracy_level: q4.accuracyLevel }));
    }
    y = parts.length === 1 ? parts[0] : g.op('Concat', parts, { axis: -1 });
  } else {
    const bytesPerValue = s.format === 'float16' ? 2 : 4;
    const colsPerPart = Math.max(1, Math.floor(limit / (K * bytesPerValue)));
    const parts: string[] = [];
    for (let from = 0, i = 0; from < N; from += colsPerPart, i++) {
      const to = Math.min(N, from + colsPerPart);
      const n = to - from;
      const slot = await g.weightSlot(N > colsPerPart ? `${s.name}.weight.part${i}` : `${s.name}.weight`, s.format, [K, n]);
      // Output rows k0..k1 (of [K, n]) are the columns k0..k1 of the weight's rows from..to.
      const kPerJob = Math.max(1, Math.floor(TRANSPOSE_JOB_VALUES / n));
      const encoding: BlockEncoding = { kind: 'transpose', type: s.format };
      for (let k0 = 0; k0 < K; k0 += kPerJob) {
        const k1 = Math.min(K, k0 + kPerJob);
        if (slot.stored(k0 * n * bytesPerValue, (k1 - k0) * n * bytesPerValue)) continue;
        const { done } = await ref.encoder.submit({ tensor: ref.tensor, cols: K, rowFrom: ref.rowFrom + from, rowTo: ref.rowFrom + to, colFrom: k0, colTo: k1, encoding });
        g.track(store(done, (block) => slot.put(k0 * n * bytesPerValue, block.outputs[0])));
      }
      parts.push(g.op('MatMul', [x, slot.name]));
    }
    y = parts.length === 1 ? parts[0] : g.op('Concat', parts, { axis: -1 });
  }
  await g.settle();
  if (s.bias) {
    if (s.bias.length !== N) throw new Error(`${s.name}: bias has ${s.bias.length} values, expected ${N}`);
    y = g.op('Add', [y, await floatWeight(g, `${s.name}.bias`, s.bias, [N], s.act)]);
  }
  return y;
}

/**
 * Largest |value| a row may have when it enters an fp16 down projection (see guardedLinear).
 * Small enough that the projection's output stays far below fp16's 65504 for any weight whose rows
 * have an L1 norm under ~1000 (Qwen3-4B's ff_out rows: ~150), large enough that ordinary rows pass
 * unscaled.
 */
export const FP16_GUARD_LIMIT = 64;

/**
 * A linear layer whose float32 input is not bounded by a norm (the SwiGLU / GELU product entering a
 * down projection). With float16 activations a row is divided by s = max(1, max|row| / LIMIT)
 * before the cast, projected, and the float32 result multiplied by s again: the projection is linear
 * in its input, so this is exact up to fp16 rounding and neither the input cast nor the output can
 * overflow fp16. Rows within the limit are unchanged (s = 1). float32 in, float32 out.
 */
export async function guardedLinear(g: Graph, x: string, spec: LinearSpec): Promise<string> {
  if (spec.act === 'float32') return linear(g, x, spec);
  const rowMax = g.op('ReduceMax', [g.op('Abs', [x])], { axes: [-1], keepdims: 1 });
  const scale = g.op('Max', [g.op('Mul', [rowMax, g.scalar('float32', 1 / FP16_GUARD_LIMIT)]), g.scalar('float32', 1)]);
  const y = await linear(g, cast(g, g.op('Div', [x, scale]), 'float32', spec.act), { ...spec, bias: null });
  const out = g.op('Mul', [cast(g, y, spec.act, 'float32'), scale]);
  // The bias is not scaled: it is added to the float32 result.
  return spec.bias ? g.op('Add', [out, await floatWeight(g, `${spec.name}.bias`, spec.bias, [spec.N], 'float32')]) : out;
}

/** One com.microsoft.MatMulNBits node over a quantized weight. */
export async function matMulNBits(g: Graph, x: string, q: Q4Weight, name: string, act: FloatType, accuracyLevel: number): Promise<string> {
  if (q.scaleType !== act) throw new Error(`${name}: ${q.scaleType} scales with ${act} activations`);
  const B = await g.weight(`${name}.q4.B`, 'uint8', [q.N, q.blocksPerRow, q.blockSize / 2], q.packed);
  const scales = await g.weight(`${name}.q4.scales`, act, [q.N * q.blocksPerRow], q.scales);
  const inputs = [x, B, scales];
  if (q.zeroPoints) inputs.push(await g.weight(`${name}.q4.zero_points`, 'uint8', [q.zeroPoints.length], q.zeroPoints));
  return g.ms('MatMulNBits', inputs, { K: q.K, N: q.N, bits: 4, block_size: q.blockSize, accuracy_level: accuracyLevel });
}

/** RMSNorm over the last axis, computed in float32: x / sqrt(mean(x²) + eps) · w. `act`: the input's type. */
export async function rmsNorm(g: Graph, x: string, o: { name: string; weight: Float32Array; eps: number; act: FloatType; out?: FloatType }): Promise<string> {
  const w = await g.weight(`${o.name}.weight`, 'float32', [o.weight.length], o.weight);
  const y = g.op('SimplifiedLayerNormalization', [cast(g, x, o.act, 'float32'), w], { axis: -1, epsilon: float(o.eps) });
  return cast(g, y, 'float32', o.out ?? o.act);
}

/** LayerNorm over the last axis, computed in float32. `act`: the input's type. */
export async function layerNorm(
  g: Graph,
  x: string,
  o: { name: string; weight: Float32Array; bias: Float32Array; eps: number; act: FloatType; out?: FloatType },
): Promise<string> {
  const w = await g.weight(`${o.name}.weight`, 'float32', [o.weight.length], o.weight);
  const b = await g.weight(`${o.name}.bias`, 'float32', [o.bias.length], o.bias);
  const y = g.op('LayerNormalization', [cast(g, x, o.act, 'float32'), w, b], { axis: -1, epsilon: float(o.eps) });
  return cast(g, y, 'float32', o.out ?? o.act);
}

/** x · sigmoid(x). */
export function silu(g: Graph, x: string): string {
  return g.op('Mul', [x, g.op('Sigmoid', [x])]);
}

/** GELU with the tanh approximation (gelu_pytorch_tanh), as com.microsoft.FastGelu. */
export function geluTanh(g: Graph, x: string): string {
  return g.ms('FastGelu', [x]);
}
