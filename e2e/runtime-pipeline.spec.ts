// The vision stage through the real inference worker (Chromium, SwiftShader WebGPU, the tiny random
// Molmo2): pixel values made on the GPU (gpuPreprocess 'on', since 'auto' keeps the CPU path on a
// software adapter) give the fp32 reference's greedy tokens; vision runs in several batches, the next
// one prepared while the current one runs, report progress per batch and give the same answer as
// without the overlap.
import { cp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { ask, load as loadFrom, openHarness, type LoadOpts } from './runtime-page.ts';
import { ensureRuntimeModel, MODEL_DIR } from './runtime-model.ts';
import { maxAbsDiff, picture, RuntimeReference } from './runtime-reference.ts';

let reference: RuntimeReference;
// A copy of the converted model of its own, so that other specs removing theirs do not disturb this one.
const COPY = 'e2e-runtime-tiny-pipeline';
const COPY_DIR = join(MODEL_DIR, '..', COPY);
const load = (page: Page, options: LoadOpts) => loadFrom(page, options, `/models/${COPY}/`);

test.beforeAll(async () => {
  test.setTimeout(300_000);
  reference = await RuntimeReference.create(await ensureRuntimeModel());
  await rm(COPY_DIR, { recursive: true, force: true });
  await cp(MODEL_DIR, COPY_DIR, { recursive: true });
});
test.afterAll(async () => {
  await rm(COPY_DIR, { recursive: true, force: true });
});

function expectReference(got: { tokens: number[]; logits?: number[][] }, want: { tokens: number[]; logits: ArrayLike<number>[] }) {
  expect(got.tokens).toEqual(want.tokens);
  const worst = Math.max(...want.logits.map((l, i) => maxAbsDiff(got.logits![i], l)));
  expect(worst).toBeLessThan(2e-3);
}

type Events = Awaited<ReturnType<typeof ask>>['events'];
const visionProgress = (events: Events) => events.flatMap((e) => (e.type === 'stage' && e.stage === 'vision' ? [[e.done, e.total]] : []));

test.describe('vision stage', () => {
  test.describe.configure({ timeout: 600_000 });

  test("gpuPreprocess 'on': an image, three frames and a video range answer with the reference tokens, and the timings say 'gpu'", async ({ page }) => {
    await openHarness(page);
    const caps = await page.evaluate(() => window.harness.capabilities());
    const auto = await load(page, { dtype: 'fp32', warmUp: false });
    // The default keeps the CPU path on a software adapter (faster there).
    expect(auto.model.preprocess).toBe(caps.adapter?.isFallbackAdapter ? 'cpu' : 'gpu');
    // A fresh worker (and onnxruntime device) for the forced load.
    await page.evaluate(() => window.harness.start());

    const { model } = await load(page, { dtype: 'fp32', warmUp: false, gpuPreprocess: 'on', maxCropsPerVisionRun: 2 });
    expect(model.preprocess).toBe('gpu');

    // An image (ImageBitmap → copyExternalImageToTexture): its crops go in one run, as an image is never split.
    const image = picture(72, 50, 1);
    const a = await ask(page, 'Point to the red square.', { kind: 'images', images: [image] }, { maxNewTokens: 6, bitmaps: true, returnLogits: true });
    expectReference(a.done, reference.answer('Point to the red square.', { images: [image] }, 6));
    expect(a.done.timings.preprocess).toBe('gpu');

    // Three frames as RGBA bytes (writeTexture), in runs of two.
    const frames = [0, 0.5, 1].map((t, i) => ({ image: picture(64, 36, 10 + i), timestamp: t }));
    const b = await ask(page, 'What happens?', { kind: 'video', frames }, { maxNewTokens: 5, returnLogits: true });
    expectReference(b.done, reference.answer('What happens?', { frames }, 5));
    expect(b.done.timings.preprocess).toBe('gpu');
    expect(visionProgress(b.events)).toEqual([[0, 3], [2, 3], [3, 3]]);

    // A keyed range of ImageBitmaps.
    const range = [1.5, 2, 2.5, 3].map((t, i) => ({ image: picture(64, 36, 20 + i), timestamp: t, key: `range#${i}` }));
    const c = await ask(page, 'Track the ball.', { kind: 'video', frames: range }, { maxNewTokens: 5, bitmaps: true, returnLogits: true });
    expectReference(c.done, reference.answer('Track the ball.', { frames: range }, 5));
    expect(c.done.timings).toMatchObject({ preprocess: 'gpu', visionEncoded: 4 });
    test.info().annotations.push({ type: 'GPU preprocessing, 4 frames (fp32, SwiftShader)', description: JSON.stringify(c.done.timings) });
  });

  test('pipelined vision batches: progress per batch, the same tokens as without overlap; vision time with and without', async ({ page }) => {
    await openHarness(page);
    const { model } = await load(page, { dtype: 'fp32', gpuPreprocess: 'off', maxCropsPerVisionRun: 2 });
    expect(model.preprocess).toBe('cpu');
    const frames = [0, 1, 2, 3, 4, 5].map((k) => ({ image: picture(96, 54, 60 + k), timestamp: k * 0.5 }));
    const want = reference.answer('Where does it go?', { frames }, 4);
    const piped = await ask(page, 'Where does it go?', { kind: 'video', frames }, { maxNewTokens: 4, returnLogits: true });
    expectReference(piped.done, want);
    expect(visionProgress(piped.events)).toEqual([[0, 6], [2, 6], [4, 6], [6, 6]]);
    const serial = await ask(page, 'Where does it go?', { kind: 'video', frames }, { maxNewTokens: 4, returnLogits: true, overlap: false });
    expect(serial.done.tokens).toEqual(piped.done.tokens);

    // The figures of both (one run each, side by side in one worker; small on SwiftShader).
    const note = ['overlapped', 'serial']
      .map((what, i) => {
        const t = [piped, serial][i].done.timings;
        return `${what}: vision stage ${t.visionStageMs.toFixed(0)} ms (preprocess ${t.preprocessMs.toFixed(0)} ms, vision ${t.visionMs.toFixed(0)} ms)`;
      })
      .join('; ');
    console.log(`6 frames 96×54 in runs of 2 (SwiftShader, CPU preprocessing): ${note}`);
    test.info().annotations.push({ type: 'pipelining', description: note });
  });
});
