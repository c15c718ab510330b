// A checkpoint as a quantized variant stores it, for running the fp32 reference (src/molmo2/reference)
// on the very weights a converted graph holds: what is left between the two is the graph's own
// arithmetic (used by tools/onnx-parity.test.ts and tools/bench-quant.ts).
import { fromFloat16, toFloat16 } from '../../src/molmo2/fp16.ts';
import type { Dtype, Target } from '../../src/molmo2/manifest.ts';
import { precisionOf, type WeightFormat } from '../../src/molmo2/onnx/layers.ts';
import { dequantizeQ4, dequantizeQ8, quantizeQ4, quantizeQ8 } from '../../src/molmo2/onnx/quant.ts';
import { MemoryTensors } from '../../src/molmo2/reference/testing.ts';
import { names } from '../../src/molmo2/tensors.ts';
import { supportsStaticCache } from '../../src/molmo2/onnx/decoder-webgpu.ts';

/** A [N, K] weight as a linear layer of `format` stores it (int4 / int8 scales in the activation type). */
export function reconstructed(format: WeightFormat, data: Float32Array, N: number, K: number, scaleType: 'float32' | 'float16'): Float32Array {
  if (format === 'q4') return dequantizeQ4(quantizeQ4(data, N, K, { scaleType }));
  if (format === 'q8') return dequantizeQ8(quantizeQ8(data, N, K, { scaleType }));
  return format === 'float16' ? fromFloat16(toFloat16(data)) : data;
}

/**
 * The checkpoint as a variant stores it: each linear weight replaced by its reconstruction at the
 * variant's precision (vision and decoder apart; the LM head's int4 scales are float32 in every
 * variant) and the embedding tables as the target's decoder stores them — for an fp32-activation variant the
 * reference on these weights must match the graph (at accuracy level 0) to float32 rounding.
 */
export function asStoredBy(dtype: Dtype, source: MemoryTensors, target: Target = 'cpu'): MemoryTensors {
  const p = precisionOf(dtype);
  const stored = new Map(source.tensors);
  for (const [name, t] of source.tensors) {
    if (name === names.embedding || name === names.newEmbedding) {
      const [rows, d] = t.shape;
      // The WebGPU decoder of an int4 variant stores the table as int4 rows (GatherBlockQuantized,
      // scales in the activation type) where d_model is a multiple of 32 and a head suits its static
      // cache, else in the activation type; the portable decoder stores it in p.table.
      const webgpuInt4 = p.linear === 'q4' && d % 32 === 0 && supportsStaticCache(source.shape(names.block(0) + '.self_attn.q_norm.weight')[0]);
      const table = target === 'cpu' ? p.table : webgpuInt4 ? 'int4' : p.act;
      const data = table === 'int4' ? reconstructed('q4', t.data, rows, d, p.act) : table === 'float16' ? fromFloat16(toFloat16(t.data)) : t.data;
      stored.set(name, { shape: t.shape, data });
    } else if (t.shape.length === 2 && name.endsWith('.weight') && !name.startsWith(names.patchEmbedding)) {
      const [N, K] = t.shape;
      const vision = name.startsWith('model.vision_backbone.');
      const scaleType = name === names.lmHead ? 'float32' : p.act;
      stored.set(name, { shape: t.shape, data: reconstructed(vision ? p.vision : p.linear, t.data, N, K, scaleType) });
    }
  }
  return new MemoryTensors(stored);
}
