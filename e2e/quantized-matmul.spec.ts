// MatMulNBits on onnxruntime-web's WebGPU EP (SwiftShader here) against the matmul of the
// dequantized weights, for the forms the converter writes: int4 (decoder, int4-vision variants) and
// int8 (the q4 variant's vision encoder), symmetric blocks of 32, fp32 activations, at accuracy level
// 0 (fp32 compute) and 4 (int8 activations). Level 0 must be exact to fp32 rounding; level 4's
// error is printed for the accuracy-level choice (bench/REPORT.md).
import { expect, test } from '@playwright/test';
import { Graph } from '../src/molmo2/onnx/graph.ts';
import { dequantizeQ4, dequantizeQ8, quantizeQ4, quantizeQ8 } from '../src/molmo2/onnx/quant.ts';
import { maxRelativeError } from '../src/molmo2/reference/testing.ts';
import { randomValues } from './runtime-graphs.ts';

const N = 48;

/** y = x · Wᵀ in float64 for [M, K] x and [N, K] w. */
function matmulT(x: Float32Array, w: Float32Array, M: number, K: number): Float64Array {
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) y[m * N + n] += x[m * K + k] * w[n * K + k];
  return y;
}

async function matMulNBitsModel(bits: 4 | 8, level: number, w: Float32Array, K: number): Promise<{ model: Uint8Array; dequantized: Float32Array }> {
  const q = bits === 4 ? quantizeQ4(w, N, K) : quantizeQ8(w, N, K);
  const g = new Graph('mm');
  g.input('x', 'float32', ['M', K]);
  const B = await g.weight('w.B', 'uint8', [N, q.blocksPerRow, (q.blockSize * bits) / 8], q.packed);
  const scales = await g.weight('w.scales', 'float32', [N * q.blocksPerRow], q.scales);
  g.output(g.ms('MatMulNBits', ['x', B, scales], { K, N, bits, block_size: q.blockSize, accuracy_level: level }), 'float32', ['M', N], 'y');
  return { model: g.toModelBytes(), dequantized: bits === 4 ? dequantizeQ4(q as ReturnType<typeof quantizeQ4>) : dequantizeQ8(q as ReturnType<typeof quantizeQ8>) };
}

const relErr = maxRelativeError;

test('MatMulNBits int4 and int8 on WebGPU equal the dequantized matmul (level 0 exact, level 4 close)', async ({ page }) => {
  await page.goto('/e2e/runtime-harness.html');
  await expect(page.locator('body')).toHaveAttribute('data-ready', 'true');
  const figures: string[] = [];
  // M = 1: a decode step; M = 40: a prefill. K = 256 (a multiple of 64, as Molmo2's 1152, 2560 and
  // 9728 are: the shapes for which onnxruntime's WebGPU kernels may take their int8-activation DP4A
  // path at level 4); K = 208 ends in half a block, as the ViT's fc2 (K = 4304) does.
  const shapes = [
    { M: 1, K: 256, levels: [0, 4] },
    { M: 40, K: 256, levels: [0, 4] },
    { M: 40, K: 208, levels: [0] },
  ];
  for (const { M, K, levels } of shapes) {
    const x = randomValues(M * K, 31, 1);
    const w = randomValues(N * K, 32, 0.1);
    for (const bits of [4, 8] as const) {
      for (const level of levels) {
        const { model, dequantized } = await matMulNBitsModel(bits, level, w, K);
        const feeds = { x: { type: 'float32' as const, data: Array.from(x), dims: [M, K] } };
        const r = await page.evaluate(([m, f]) => window.harness.runGraph('auto', m, f, 'y'), [Array.from(model), feeds] as const);
        const err = relErr(r.data, matmulT(x, dequantized, M, K));
        figures.push(`M ${M} K ${K} int${bits} level ${level}: ${err.toExponential(2)}`);
        expect(err, `M ${M}, K ${K}, int${bits}, accuracy level ${level}`).toBeLessThan(level === 0 ? 1e-5 : 2e-2);
      }
    }
  }
  console.log(`MatMulNBits on WebGPU vs the dequantized matmul (max relative error): ${figures.join(', ')}`);
  test.info().annotations.push({ type: 'MatMulNBits on WebGPU', description: figures.join(', ') });
});
