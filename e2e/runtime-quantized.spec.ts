// The q4 variant the app loads on GPUs without shader-f16 (int4 decoder, int8 vision encoder, fp32
// activations) on onnxruntime-web's WebGPU EP, against the fp32 reference running on the very weights
// the variant stores (tools/lib/stored-weights.ts): logits along the reference's tokens (teacher
// forcing) on an image question and a video question; and the GPU work of one decode step (fused
// kernels, one read-back), counted by wrapping WebGPU in the inference worker (gpu-counters.ts).
import { expect, test } from '@playwright/test';
import { asStoredBy } from '../tools/lib/stored-weights.ts';
import { ensureRuntimeModel } from './runtime-model.ts';
import { maxAbsDiff, picture, RuntimeReference } from './runtime-reference.ts';
import { ask, load, openHarness } from './runtime-page.ts';

let stored: RuntimeReference;

test.beforeAll(async () => {
  test.setTimeout(300_000);
  const model = await ensureRuntimeModel();
  stored = await RuntimeReference.create(model, asStoredBy('q4', model.tensors, 'webgpu'));
});

test('q4 on WebGPU follows the reference on its stored weights along the reference tokens (image and video prompts)', async ({ page }) => {
  test.setTimeout(420_000);
  await openHarness(page);
  const { model } = await load(page, { dtype: 'q4', warmUp: false });
  expect(model.precision).toEqual({ decoder: 'int4', vision: 'int8', activations: 'float32' });
  const steps = 5;
  const prompts = [
    { question: 'Point to the red square.', visual: { kind: 'images' as const, images: [picture(72, 50, 3)] } },
    { question: 'Track the ball.', visual: { kind: 'video' as const, frames: [0, 0.5].map((t, i) => ({ image: picture(64, 36, 30 + i), timestamp: t })) } },
  ];
  const figures: string[] = [];
  for (const p of prompts) {
    const reference = p.visual.kind === 'images' ? { images: p.visual.images } : { frames: p.visual.frames };
    const want = stored.answer(p.question, reference, steps);
    const a = await ask(page, p.question, p.visual, { maxNewTokens: want.tokens.length, returnLogits: true, forceTokens: want.tokens });
    const got = a.done.logits!;
    expect(got.length, p.visual.kind).toBe(want.logits.length);
    const scale = want.logits.reduce((m, l) => l.reduce((a, v) => Math.max(a, Math.abs(v)), m), 0);
    const worst = Math.max(...want.logits.map((l, i) => maxAbsDiff(got[i], l)));
    const agree = a.done.tokens.filter((t, i) => t === want.tokens[i]).length / want.tokens.length;
    figures.push(`${p.visual.kind}: max |Δlogits| ${worst.toExponential(2)} (${(worst / scale).toExponential(2)} of max |logit|), top-1 ${(agree * 100).toFixed(0)}%`);
    expect(worst / scale, p.visual.kind).toBeLessThan(1e-4);
    expect(a.done.tokens, p.visual.kind).toEqual(want.tokens);
  }
  console.log(`q4 on WebGPU vs the reference on its stored weights: ${figures.join('; ')}`);
  test.info().annotations.push({ type: 'q4 on WebGPU', description: figures.join('; ') });
});

test('a decode step runs the fused kernels and reads back only the next token', async ({ page }) => {
  test.setTimeout(300_000);
  await openHarness(page);
  await page.evaluate(() => window.harness.countGpuWork());
  const { model } = await load(page, { dtype: 'q4', warmUp: false });
  const layers = (await ensureRuntimeModel()).config.text.numLayers;
  const question = (n: number) => ask(page, 'Describe the scene.', { kind: 'none' }, { maxNewTokens: n });
  await question(1);
  await page.evaluate(() => window.harness.takeGpuCounts());
  await question(1);
  const one = await page.evaluate(() => window.harness.takeGpuCounts());
  const two = await question(2);
  const both = await page.evaluate(() => window.harness.takeGpuCounts());
  expect(two.done.timings.generatedTokens).toBe(2);
  expect(model.kvCache).toBe('static');
  // One decode step = the 2-token answer's work minus the 1-token answer's.
  const step = (k: string) => (both.byKernel[k] ?? 0) - (one.byKernel[k] ?? 0);
  expect(both.downloads - one.downloads).toBe(1);
  // GroupQueryAttention rotates q and k itself; residual adds ride in SkipSimplifiedLayerNormalization.
  expect(step('FusedQKRotaryEmbedding')).toBe(layers);
  expect(step('SkipLayerNorm')).toBe(2 * layers - 1);
  // Nothing of RoPE by hand or of the prefill mask runs in a decode step.
  for (const k of ['Sin', 'Cos', 'Range', 'LessOrEqual', 'Tile']) expect(step(k), k).toBe(0);
  console.log(`one decode step (q4, ${layers} layers): ${both.dispatches - one.dispatches} dispatches, ${both.downloads - one.downloads} read-back`);
});
