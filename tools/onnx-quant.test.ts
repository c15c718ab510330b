// Weight encoders of the ONNX converter: float16 conversion and MatMulNBits int4 / int8 packing, checked
// against their definitions and against onnxruntime's own MatMulNBits kernel.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { float16Bits, float16Value, fromFloat16, toFloat16 } from '../src/molmo2/fp16.ts';
import { Graph } from '../src/molmo2/onnx/graph.ts';
import { maxRelativeError } from '../src/molmo2/reference/testing.ts';
import { matMulNBits } from '../src/molmo2/onnx/layers.ts';
import { dequantizeQ4, dequantizeQ8, quantizeQ4, quantizeQ8, sliceQ4Rows } from '../src/molmo2/onnx/quant.ts';
import { encodeBlock, blockOutputSizes, type BlockRequest } from '../src/molmo2/onnx/encode.ts';

/** Deterministic values with a heavy tail and both signs. */
function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  return Float32Array.from({ length: n }, () => (next() - 0.5) * (next() < 0.1 ? 8 : 1));
}

describe('float16 conversion', () => {
  it('round-trips every finite binary16 value and keeps the sign of zero', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00 && h & 0x3ff) continue; // NaN payloads
      expect(float16Bits(float16Value(h))).toBe(h);
    }
    expect(float16Bits(-0)).toBe(0x8000);
  });

  it('rounds to the nearest binary16, ties to even, across normals and subnormals', () => {
    // Midpoints between neighbours: the even one (lower code bit 0) wins.
    for (const h of [0x0001, 0x0002, 0x03ff, 0x0400, 0x3c00, 0x3c01, 0x7bfe]) {
      const mid = (float16Value(h) + float16Value(h + 1)) / 2;
      expect(float16Bits(mid)).toBe(h & 1 ? h + 1 : h);
      expect(float16Bits(-mid)).toBe((h & 1 ? h + 1 : h) | 0x8000);
    }
    // Arbitrary values land on the nearest representable neighbour.
    for (const v of [...values(5000, 3).map((x) => x * 7e-5), ...values(5000, 4).map((x) => x * 1.5e4)]) {
      const h = float16Bits(v);
      const err = Math.abs(float16Value(h) - Math.fround(v));
      const down = Math.abs(float16Value((h & 0x7fff) === 0 ? h : h - 1) - Math.fround(v));
      const up = Math.abs(float16Value(h + 1) - Math.fround(v));
      expect(err).toBeLessThanOrEqual(Math.min(down, up));
    }
  });

  it('maps overflow to infinity, tiny values to zero and keeps NaN', () => {
    expect(float16Bits(65504)).toBe(0x7bff);
    expect(float16Bits(65519)).toBe(0x7bff); // below the midpoint to 65536
    expect(float16Bits(65520)).toBe(0x7c00); // the midpoint rounds to even = infinity
    expect(float16Bits(1e9)).toBe(0x7c00);
    expect(float16Bits(-Infinity)).toBe(0xfc00);
    expect(float16Bits(2 ** -24)).toBe(1); // smallest subnormal
    expect(float16Bits(2 ** -25)).toBe(0); // tie with zero → even (0)
    expect(float16Bits(2 ** -25 * 1.01)).toBe(1);
    expect(float16Bits(1e-10)).toBe(0);
    expect(float16Value(float16Bits(NaN))).toBeNaN();
    const xs = Float32Array.of(1, -2.5, 0.1, 1e-6);
    expect(Array.from(fromFloat16(toFloat16(xs)))).toEqual(Array.from(xs, (x) => float16Value(float16Bits(x))));
  });
});

describe('int4 block quantization (MatMulNBits layout)', () => {
  it('packs two codes per byte, low nibble first, scale = largest-magnitude value / −8', () => {
    // One row, one block of 32: values that are exact multiples of the scale 0.25 (extreme −2 → code 0).
    const codes = Array.from({ length: 32 }, (_, i) => i % 16);
    const w = Float32Array.from(codes, (c) => (c - 8) * 0.25);
    const q = quantizeQ4(w, 1, 32);
    expect(q.packed.length).toBe(16);
    expect(Array.from(q.packed)).toEqual(Array.from({ length: 16 }, (_, j) => codes[2 * j] | (codes[2 * j + 1] << 4)));
    expect(Array.from(q.scales)).toEqual([0.25]);
    expect(q.zeroPoints).toBeUndefined();
    expect(Array.from(dequantizeQ4(q))).toEqual(Array.from(w));
  });

  it('reconstructs within half a step, and never worse than one step at the clamped extreme', () => {
    const N = 7;
    const K = 77; // three blocks, the last one padded
    const w = values(N * K, 11);
    for (const symmetric of [true, false]) {
      for (const scaleType of ['float32', 'float16'] as const) {
        const q = quantizeQ4(w, N, K, { symmetric, scaleType });
        expect(q.blocksPerRow).toBe(3);
        expect(q.packed.length).toBe(N * 3 * 16);
        expect(q.zeroPoints?.length).toBe(symmetric ? undefined : N * 2);
        const back = dequantizeQ4(q);
        for (let n = 0; n < N; n++) {
          for (let b = 0; b < 3; b++) {
            const scale = Math.abs(scaleType === 'float16' ? float16Value(q.scales[n * 3 + b]) : q.scales[n * 3 + b]);
            const block = Array.from({ length: Math.min(32, K - b * 32) }, (_, i) => n * K + b * 32 + i);
            const amax = Math.max(...block.map((i) => Math.abs(w[i])));
            // The step is about amax/8 (symmetric) or range/15 (asymmetric), up to fp16 rounding.
            expect(scale).toBeLessThanOrEqual((symmetric ? amax / 8 : (2 * amax) / 15) * 1.001 + 1e-12);
            for (const i of block) {
              const err = Math.abs(back[i] - w[i]);
              expect(err).toBeLessThanOrEqual(scale * 1.0001 + 1e-7);
              // Away from the extremes every value is within half a step.
              if (Math.abs(w[i]) < amax * 0.8) expect(err).toBeLessThanOrEqual(scale * 0.5001 + 1e-7);
            }
          }
        }
      }
    }
  });

  it('slices whole rows', () => {
    const w = values(5 * 40, 5);
    const q = quantizeQ4(w, 5, 40, { symmetric: false });
    const part = sliceQ4Rows(q, 2, 4);
    expect(Array.from(dequantizeQ4(part))).toEqual(Array.from(dequantizeQ4(q).subarray(2 * 40, 4 * 40)));
  });
});

/** x · Wᵀ in float64. */
function matmulT(x: Float32Array, M: number, K: number, w: Float32Array, N: number): Float64Array {
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) y[m * N + n] += x[m * K + k] * w[n * K + k];
  return y;
}

async function runMatMulNBits(x: Float32Array, M: number, K: number, w: Float32Array, N: number, o: { symmetric: boolean; act: 'float32' | 'float16'; accuracyLevel: number }) {
  const q = quantizeQ4(w, N, K, { symmetric: o.symmetric, scaleType: o.act });
  const g = new Graph('mm');
  g.input('x', o.act, ['M', K]);
  g.output(await matMulNBits(g, 'x', q, 'w', o.act, o.accuracyLevel), o.act, ['M', N], 'y');
  const session = await ort.InferenceSession.create(g.toModelBytes());
  const feed = o.act === 'float16' ? new ort.Tensor('float16', toFloat16(x), [M, K]) : new ort.Tensor('float32', x, [M, K]);
  const y = (await session.run({ x: feed })).y;
  await session.release();
  const out = o.act === 'float16' ? fromFloat16(y.data as Uint16Array) : (y.data as Float32Array);
  const xs = o.act === 'float16' ? fromFloat16(toFloat16(x)) : x;
  return { out, expected: matmulT(xs, M, K, dequantizeQ4(q), N) };
}

const relErr = maxRelativeError;

describe('int8 block quantization (MatMulNBits bits 8)', () => {
  it('one code per byte, scale = largest-magnitude value / −128, implicit zero point 128', () => {
    const w = Float32Array.from({ length: 32 }, (_, i) => (i - 16) * 0.125); // extreme −2 → code 0
    const q = quantizeQ8(w, 1, 32);
    expect(Array.from(q.scales)).toEqual([-2 / -128]);
    expect(Array.from(q.packed)).toEqual(Array.from({ length: 32 }, (_, i) => 128 + (i - 16) * 8));
    expect(Array.from(dequantizeQ8(q))).toEqual(Array.from(w));
  });

  it('reconstructs within half a step (a padded last block reconstructs to 0), fp32 and fp16 scales', () => {
    const N = 5;
    const K = 77;
    const w = values(N * K, 12);
    for (const scaleType of ['float32', 'float16'] as const) {
      const q = quantizeQ8(w, N, K, { scaleType });
      expect(q.packed.length).toBe(N * 3 * 32);
      expect(q.packed[2 * 32 + 13]).toBe(128); // row 0, block 2, past K
      const back = dequantizeQ8(q);
      for (let n = 0; n < N; n++) {
        for (let b = 0; b < 3; b++) {
          const scale = Math.abs(scaleType === 'float16' ? float16Value(q.scales[n * 3 + b]) : q.scales[n * 3 + b]);
          for (let i = n * K + b * 32; i < n * K + Math.min(K, (b + 1) * 32); i++) expect(Math.abs(back[i] - w[i])).toBeLessThanOrEqual(scale * 0.5001 + 1e-7);
        }
      }
    }
  });

  it('the encoding job writes the same codes and scales as quantizeQ8', () => {
    const w = values(6 * 64, 13);
    const req: BlockRequest = { tensor: 't', cols: 64, rowFrom: 0, rowTo: 6, colFrom: 0, colTo: 64, encoding: { kind: 'q8', blockSize: 32, scaleType: 'float32' } };
    const outputs = blockOutputSizes(req).map((n) => new Uint8Array(n));
    encodeBlock(w, req, outputs);
    const q = quantizeQ8(w, 6, 64);
    expect(Array.from(outputs[0])).toEqual(Array.from(q.packed));
    expect(Array.from(new Float32Array(outputs[1].buffer))).toEqual(Array.from(q.scales));
  });

  it('MatMulNBits bits 8 on onnxruntime-node equals the dequantized matmul (level 0 exact, level 4 close)', async () => {
    const [M, K, N] = [5, 72, 19];
    const x = values(M * K, 23);
    const w = values(N * K, 24);
    const q = quantizeQ8(w, N, K);
    for (const level of [0, 4]) {
      const g = new Graph('mm8');
      g.input('x', 'float32', ['M', K]);
      const B = await g.weight('w.q8.B', 'uint8', [N, q.blocksPerRow, 32], q.packed);
      const scales = await g.weight('w.q8.scales', 'float32', [N * q.blocksPerRow], q.scales);
      g.output(g.ms('MatMulNBits', ['x', B, scales], { K, N, bits: 8, block_size: 32, accuracy_level: level }), 'float32', ['M', N], 'y');
      const session = await ort.InferenceSession.create(g.toModelBytes());
      const y = (await session.run({ x: new ort.Tensor('float32', x, [M, K]) })).y.data as Float32Array;
      await session.release();
      expect(relErr(y, matmulT(x, M, K, dequantizeQ8(q), N))).toBeLessThan(level === 0 ? 1e-6 : 1e-2);
    }
  });
});

describe('MatMulNBits in onnxruntime equals the dequantized matmul', () => {
  const M = 5;
  const K = 72; // not a multiple of the block size
  const N = 19;
  const x = values(M * K, 21);
  const w = values(N * K, 22);

  for (const symmetric of [true, false]) {
    it(`${symmetric ? 'symmetric' : 'asymmetric'}, float32, accuracy level 0: exact to float32 rounding`, async () => {
      const { out, expected } = await runMatMulNBits(x, M, K, w, N, { symmetric, act: 'float32', accuracyLevel: 0 });
      expect(relErr(out, expected)).toBeLessThan(1e-6);
    });
  }

  it('float16 activations and scales', async () => {
    const { out, expected } = await runMatMulNBits(x, M, K, w, N, { symmetric: true, act: 'float16', accuracyLevel: 0 });
    expect(relErr(out, expected)).toBeLessThan(2e-3); // float16 output rounding
  });

  it('accuracy level 4 (int8 activations on the CPU) stays close', async () => {
    const { out, expected } = await runMatMulNBits(x, M, K, w, N, { symmetric: true, act: 'float32', accuracyLevel: 4 });
    expect(relErr(out, expected)).toBeLessThan(2e-2);
  });
});
