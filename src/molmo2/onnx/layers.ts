// Building blocks shared by the graph builders: weight encoding per dtype, linear layers (MatMulNBits
// int4 or float MatMul), float tables and row lookups, norms computed in float32, casts, activations.
import type { Dtype } from '../manifest.ts';
import { toFloat16 } from './fp16.ts';
import { float, ONNX_TYPE, type Graph, type TensorType } from './graph.ts';
import { quantizeQ4, sliceQ4Rows, type Q4Weight } from './quant.ts';

export type FloatType = 'float32' | 'float16';
/** How a linear layer's weight is stored. */
export type WeightFormat = 'q4' | 'float16' | 'float32';

/** What a variant's dtype means for activations and for the linear layers' weights. */
export interface Precision {
  /** Activations between layers (norms, softmax and attention always run in float32). */
  act: FloatType;
  /** Weights of the large linear layers. */
  linear: WeightFormat;
  /** Embedding tables and other float weights that are not quantized. */
  table: FloatType;
}

export function precisionOf(dtype: Dtype): Precision {
  switch (dtype) {
    case 'q4f16':
      return { act: 'float16', linear: 'q4', table: 'float16' };
    case 'q4':
      // fp32 activations for GPUs without shader-f16; tables stay fp16 (half the bytes) and are cast after the lookup.
      return { act: 'float32', linear: 'q4', table: 'float16' };
    case 'fp16':
      return { act: 'float16', linear: 'float16', table: 'float16' };
    case 'fp32':
      return { act: 'float32', linear: 'float32', table: 'float32' };
    default:
      throw new Error(`unknown dtype ${String(dtype)} (choose q4f16, q4, fp16 or fp32)`);
  }
}

export interface Q4Settings {
  blockSize: number;
  /** MatMulNBits accuracy_level: 4 = int8 compute of the activations (DP4A on WebGPU). */
  accuracyLevel: number;
  symmetric: boolean;
}

export const DEFAULT_Q4: Q4Settings = { blockSize: 32, accuracyLevel: 4, symmetric: true };

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

/**
 * Stores a float table [rows, cols] given as consecutive row-major pieces (e.g. embedding ++
 * new_embedding), split into row blocks that each fit one chunk.
 */
export async function floatTable(g: Graph, name: string, pieces: Float32Array[], cols: number, type: FloatType): Promise<FloatTable> {
  const rows = pieces.reduce((s, p) => s + p.length, 0) / cols;
  if (!Number.isInteger(rows)) throw new Error(`${name}: ${rows * cols} values do not form rows of ${cols}`);
  const rowsPerPart = Math.max(1, Math.floor(g.maxWeightBytes() / (cols * (type === 'float16' ? 2 : 4))));
  const table: FloatTable = { type, cols, parts: [] };
  for (let from = 0, i = 0; from < rows; from += rowsPerPart, i++) {
    const to = Math.min(rows, from + rowsPerPart);
    // The slices of the pieces that fall into rows [from, to).
    const slices: ArrayBufferView[] = [];
    let start = 0;
    for (const p of pieces) {
      const lo = Math.max(from * cols, start);
      const hi = Math.min(to * cols, start + p.length);
      if (hi > lo) slices.push(floatBytes(p.subarray(lo - start, hi - start), type));
      start += p.length;
    }
    const part = await g.weight(rows > rowsPerPart ? `${name}.part${i}` : name, type, [to - from, cols], slices);
    table.parts.push({ name: part, firstRow: from, rows: to - from });
  }
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
  /** [N, K] in torch Linear layout (out features × in features). */
  weight: Float32Array;
  N: number;
  K: number;
  bias?: Float32Array | null;
  format: WeightFormat;
  /** Type of the input and the output. */
  act: FloatType;
  q4?: Q4Settings;
}

/**
 * y = x · Wᵀ (+ b) over the last axis of `x`. A weight too large for one external-data chunk is split
 * along N into several MatMuls whose outputs are concatenated.
 */
export async function linear(g: Graph, x: string, s: LinearSpec): Promise<string> {
  const { N, K } = s;
  if (s.weight.length !== N * K) throw new Error(`${s.name}: weight has ${s.weight.length} values, expected ${N}×${K}`);
  if (s.format !== 'q4' && s.format !== s.act) throw new Error(`${s.name}: ${s.format} weights need ${s.format} activations, got ${s.act}`);
  const limit = g.maxWeightBytes();
  let y: string;
  if (s.format === 'q4') {
    const q4 = s.q4 ?? DEFAULT_Q4;
    const q = quantizeQ4(s.weight, N, K, { blockSize: q4.blockSize, symmetric: q4.symmetric, scaleType: s.act });
    const rowBytes = q.blocksPerRow * (q.blockSize / 2);
    const rowsPerPart = Math.max(1, Math.floor(limit / rowBytes));
    const parts: string[] = [];
    for (let from = 0, i = 0; from < N; from += rowsPerPart, i++) {
      const part = sliceQ4Rows(q, from, Math.min(N, from + rowsPerPart));
      parts.push(await matMulNBits(g, x, part, N > rowsPerPart ? `${s.name}.part${i}` : s.name, s.act, q4.accuracyLevel));
    }
    y = parts.length === 1 ? parts[0] : g.op('Concat', parts, { axis: -1 });
  } else {
    const bytesPerValue = s.format === 'float16' ? 2 : 4;
    const colsPerPart = Math.max(1, Math.floor(limit / (K * bytesPerValue)));
    const parts: string[] = [];
    for (let from = 0, i = 0; from < N; from += colsPerPart, i++) {
      const to = Math.min(N, from + colsPerPart);
      const rows = s.weight.subarray(from * K, to * K);
      const w = await floatWeight(g, N > colsPerPart ? `${s.name}.weight.part${i}` : `${s.name}.weight`, transpose(rows, to - from, K), [K, to - from], s.format);
      parts.push(g.op('MatMul', [x, w]));
    }
    y = parts.length === 1 ? parts[0] : g.op('Concat', parts, { axis: -1 });
  }
  if (s.bias) {
    if (s.bias.length !== N) throw new Error(`${s.name}: bias has ${s.bias.length} values, expected ${N}`);
    y = g.op('Add', [y, await floatWeight(g, `${s.name}.bias`, s.bias, [N], s.act)]);
  }
  return y;
}

/** One com.microsoft.MatMulNBits node over a quantized weight. */
export async function matMulNBits(g: Graph, x: string, q: Q4Weight, name: string, act: FloatType, accuracyLevel: number): Promise<string> {
  if (q.scaleType !== act) throw new Error(`${name}: ${q.scaleType} scales with ${act} activations`);
  const B = await g.weight(`${name}.q4.B`, 'uint8', [q.N, q.blocksPerRow, q.blockSize / 2], q.packed);
  const scales = await g.weight(`${name}.q4.scales`, act, [q.N * q.blocksPerRow], q.scales);
  const inputs = [x, B, scales];
  if (q.zeroPoints) inputs.push(await g.weight(`${name}.q4.zero_points`, 'uint8', [q.zeroPoints.length], q.zeroPoints));
  return g.ms('MatMulNBits', inputs, { K: q.K, N: q.N, bits: 4, block_size: q.blockSize, accuracy_level: accuracyLevel }, name);
}

/** RMSNorm over the last axis, computed in float32: x / sqrt(mean(x²) + eps) · w. */
export async function rmsNorm(g: Graph, x: string, o: { name: string; weight: Float32Array; eps: number; act: FloatType; out?: FloatType }): Promise<string> {
  const w = await g.weight(`${o.name}.weight`, 'float32', [o.weight.length], o.weight);
  const y = g.op('SimplifiedLayerNormalization', [cast(g, x, o.act, 'float32'), w], { axis: -1, epsilon: float(o.eps) }, o.name);
  return cast(g, y, 'float32', o.out ?? o.act);
}

/** LayerNorm over the last axis, computed in float32. */
export async function layerNorm(
  g: Graph,
  x: string,
  o: { name: string; weight: Float32Array; bias: Float32Array; eps: number; act: FloatType; out?: FloatType },
): Promise<string> {
  const w = await g.weight(`${o.name}.weight`, 'float32', [o.weight.length], o.weight);
  const b = await g.weight(`${o.name}.bias`, 'float32', [o.bias.length], o.bias);
  const y = g.op('LayerNormalization', [cast(g, x, o.act, 'float32'), w, b], { axis: -1, epsilon: float(o.eps) }, o.name);
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
