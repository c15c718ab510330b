// Small attention graphs and a plain JS grouped-query attention reference for the runtime browser
// tests (built in Node with onnx-proto).
import onnxProto, { type onnx as OnnxTypes } from 'onnx-proto';

// onnx-proto is CommonJS: its namespace object comes through the default import.
const { onnx } = onnxProto;
type Node = OnnxTypes.INodeProto;
type ValueInfo = OnnxTypes.IValueInfoProto;
type Attribute = OnnxTypes.IAttributeProto;

const F32 = onnx.TensorProto.DataType.FLOAT;
const I32 = onnx.TensorProto.DataType.INT32;

function valueInfo(name: string, elemType: number, dims: (number | string)[]): ValueInfo {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

function model(nodes: Node[], inputs: ValueInfo[], outputs: ValueInfo[]): Uint8Array {
  return onnx.ModelProto.encode({
    irVersion: 8,
    producerName: 'molmo2-web-tests',
    opsetImport: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
    graph: { name: 'g', node: nodes, input: inputs, output: outputs },
  }).finish();
}

const intAttr = (name: string, i: number): Attribute => ({ name, type: onnx.AttributeProto.AttributeType.INT, i });

/** MultiHeadAttention(num_heads) over q [1,S,H·D], k/v [1,T,H·D] with an additive bias [1,1,S,T] → o. */
export function mhaWithBias(heads: number, headDim: number): Uint8Array {
  const w = heads * headDim;
  return model(
    [{ opType: 'MultiHeadAttention', domain: 'com.microsoft', input: ['q', 'k', 'v', '', '', 'bias'], output: ['o'], attribute: [intAttr('num_heads', heads)] }],
    [valueInfo('q', F32, [1, 'S', w]), valueInfo('k', F32, [1, 'T', w]), valueInfo('v', F32, [1, 'T', w]), valueInfo('bias', F32, [1, 1, 'S', 'T'])],
    [valueInfo('o', F32, [1, 'S', w])],
  );
}

/** Causal GroupQueryAttention without past: q [1,S,Hq·D], k/v [1,S,Hkv·D] → o. */
export function causalGqa(qHeads: number, kvHeads: number, headDim: number): Uint8Array {
  return model(
    [
      {
        opType: 'GroupQueryAttention',
        domain: 'com.microsoft',
        input: ['q', 'k', 'v', '', '', 'seqlens_k', 'total_seq'],
        output: ['o'],
        attribute: [intAttr('num_heads', qHeads), intAttr('kv_num_heads', kvHeads)],
      },
    ],
    [
      valueInfo('q', F32, [1, 'S', qHeads * headDim]),
      valueInfo('k', F32, [1, 'S', kvHeads * headDim]),
      valueInfo('v', F32, [1, 'S', kvHeads * headDim]),
      valueInfo('seqlens_k', I32, [1]),
      valueInfo('total_seq', I32, []),
    ],
    [valueInfo('o', F32, [1, 'S', qHeads * headDim])],
  );
}

/** Deterministic values in [−amp, amp). */
export function randomValues(n: number, seed: number, amp: number): Float32Array {
  let s = seed | 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 * amp - amp;
  }
  return out;
}

/** Attention over rows [S, Hq·D] / [T, Hkv·D]; query head i uses KV head ⌊i / (Hq/Hkv)⌋; `allowed(q, k)`. */
export function attentionReference(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  o: { S: number; T: number; qHeads: number; kvHeads: number; headDim: number; allowed: (q: number, k: number) => boolean },
): Float32Array {
  const { S, T, qHeads, kvHeads, headDim: D } = o;
  const rep = qHeads / kvHeads;
  const out = new Float32Array(S * qHeads * D);
  const scores = new Float64Array(T);
  const scale = 1 / Math.sqrt(D);
  for (let s = 0; s < S; s++) {
    for (let h = 0; h < qHeads; h++) {
      const kh = Math.floor(h / rep);
      let max = -Infinity;
      for (let t = 0; t < T; t++) {
        if (!o.allowed(s, t)) {
          scores[t] = -Infinity;
          continue;
        }
        let dot = 0;
        for (let e = 0; e < D; e++) dot += q[(s * qHeads + h) * D + e] * k[(t * kvHeads + kh) * D + e];
        scores[t] = dot * scale;
        max = Math.max(max, scores[t]);
      }
      let z = 0;
      for (let t = 0; t < T; t++) {
        scores[t] = Math.exp(scores[t] - max);
        z += scores[t];
      }
      for (let e = 0; e < D; e++) {
        let acc = 0;
        for (let t = 0; t < T; t++) acc += scores[t] * v[(t * kvHeads + kh) * D + e];
        out[(s * qHeads + h) * D + e] = acc / z;
      }
    }
  }
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) return NaN;
    m = Math.max(m, d);
  }
  return m;
}
