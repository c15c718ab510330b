// Work done once is not done again, and the answers stay exact: the vision feature cache (frames keyed
// by the page), prefix reuse of the decoder's KV cache for a follow-up over the same frames, and the
// limits refusing an over-long request before any preprocessing or vision work. Real onnxruntime-web
// WebGPU (SwiftShader) in Chromium, the tiny random Molmo2 converted by the real converter, answers
// checked against the fp32 reference.
import { expect, test } from '@playwright/test';
import { checkAskLimits } from '../src/runtime/limits.ts';
import { ask, load, openHarness } from './runtime-page.ts';
import { ensureRuntimeModel } from './runtime-model.ts';
import { maxAbsDiff, picture, RuntimeReference } from './runtime-reference.ts';

let reference: RuntimeReference;

test.beforeAll(async () => {
  test.setTimeout(300_000);
  reference = await RuntimeReference.create(await ensureRuntimeModel());
});

/** Frames of a clip: picture k at 0.5 s steps, keyed as the page keys them (file fingerprint + frame index). */
const clip = (indices: number[], keyed = true) =>
  indices.map((k) => ({ image: picture(64, 36, 40 + k), timestamp: k * 0.5, ...(keyed ? { key: `clip-sha256-abc#${k}` } : {}) }));

function expectSameAnswer(got: { tokens: number[]; logits?: number[][] }, want: { tokens: number[]; logits: ArrayLike<number>[] }) {
  expect(got.tokens).toEqual(want.tokens);
  const worst = Math.max(...want.logits.map((l, i) => maxAbsDiff(got.logits![i], l)));
  expect(worst).toBeLessThan(2e-3);
}

test.describe('reuse and limits', () => {
  test.describe.configure({ timeout: 600_000 });

  test('a follow-up on the same frames keeps the prefix (no vision, prefill of the new tokens only) and answers exactly as a cold run', async ({ page }) => {
    await openHarness(page);
    await load(page, { dtype: 'fp32', warmUp: false });
    const frames = clip([0, 1, 2, 3]);
    const first = await ask(page, 'Point to the ball.', { kind: 'video', frames }, { maxNewTokens: 4, returnLogits: true });
    expect(first.done.timings.prefixReusedTokens).toBe(0);
    expect(first.done.timings.visionEncoded).toBe(4);
    expectSameAnswer(first.done, reference.answer('Point to the ball.', { frames }, 4));

    const question = 'How many squares are there?';
    const want = reference.answer(question, { frames }, 5);
    const warm = await ask(page, question, { kind: 'video', frames }, { maxNewTokens: 5, returnLogits: true });
    const t = warm.done.timings;
    expect(t.visionEncoded).toBe(0);
    expect(t.prefixReusedTokens).toBeGreaterThan(4 * 83);
    expect(t.prefillTokens).toBe(t.promptTokens - t.prefixReusedTokens);
    expect(t.prefillTokens).toBeLessThan(30);
    expect(t.promptTokens).toBe(want.promptTokens);
    const stages = warm.events.filter((e) => e.type === 'stage').map((e) => (e as { stage: string }).stage);
    expect(stages).toEqual(['preprocess', 'prefill', 'decode']);
    expectSameAnswer(warm.done, want);

    // The same question cold (caches cleared) gives the same tokens.
    await page.evaluate(() => window.harness.clearCaches());
    const cold = await ask(page, question, { kind: 'video', frames }, { maxNewTokens: 5, returnLogits: true });
    expect(cold.done.timings.prefixReusedTokens).toBe(0);
    expect(cold.done.timings.visionEncoded).toBe(4);
    expect(cold.done.tokens).toEqual(warm.done.tokens);
    expect(Math.max(...cold.done.logits!.map((l, i) => maxAbsDiff(l, warm.done.logits![i])))).toBeLessThan(1e-3);
    test.info().annotations.push({ type: 'cold vs follow-up (fp32, SwiftShader)', description: JSON.stringify({ cold: cold.done.timings, warm: t }) });
  });

  test('an overlapping range runs the vision encoder only for the frames not seen; frames without keys are always encoded', async ({ page }) => {
    await openHarness(page);
    await load(page, { dtype: 'fp32', warmUp: false });
    await ask(page, 'Point to the ball.', { kind: 'video', frames: clip([0, 1, 2]) }, { maxNewTokens: 1 });
    const later = clip([1, 2, 3, 4]);
    const question = 'Track the ball.';
    const a = await ask(page, question, { kind: 'video', frames: later }, { maxNewTokens: 4, returnLogits: true });
    expect(a.done.timings.visualItems).toBe(4);
    expect(a.done.timings.visionCacheHits).toBe(2);
    expect(a.done.timings.visionEncoded).toBe(2);
    expect(a.done.timings.prefixReusedTokens).toBe(0);
    expectSameAnswer(a.done, reference.answer(question, { frames: later }, 4));

    const unkeyed = await ask(page, question, { kind: 'video', frames: clip([1, 2, 3, 4], false) }, { maxNewTokens: 4 });
    expect(unkeyed.done.timings.visionCacheHits).toBe(0);
    expect(unkeyed.done.timings.visionEncoded).toBe(4);
    expect(unkeyed.done.timings.prefixReusedTokens).toBe(0);
    expect(unkeyed.done.tokens).toEqual(a.done.tokens);
  });

  test('a request over the context cap is refused before preprocessing or vision, with the numbers the page computes too', async ({ page }) => {
    await openHarness(page);
    const { model } = await load(page, { dtype: 'fp32', warmUp: false, maxContext: 640 });
    expect(model.maxContext).toBe(640);
    const frames = clip([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const shape = { question: 'Track the ball.', visual: { kind: 'video' as const, timestamps: frames.map((f) => f.timestamp) } };
    const pageView = checkAskLimits(shape, model.limits);
    expect(pageView.ok).toBe(false);
    expect(model.limits.maxFrames).toBeGreaterThan(0);
    expect(model.limits.maxFrames).toBeLessThan(frames.length);

    const events = await page.evaluate(async (fs) => {
      try {
        await window.harness.ask('Track the ball.', { kind: 'video', frames: fs }, { maxNewTokens: 4 });
        return { refused: false, message: '' };
      } catch (e) {
        return { refused: true, message: String((e as Error).message) };
      }
    }, frames);
    expect(events.refused).toBe(true);
    expect(events.message).toMatch(/prompt tokens for 10 frames/);
    expect(events.message).toContain('640-token context');
    expect(events.message).toMatch(/Use at most \d+ frames \(a shorter range or a lower frame cap\)/);
    // The worker's suggestion fits; and it refused before vision: the next question encodes every frame.
    const fit = Number(/at most (\d+) frames/.exec(events.message)![1]);
    const ok = await ask(page, 'Track the ball.', { kind: 'video', frames: frames.slice(0, fit) }, { maxNewTokens: 2 });
    expect(ok.done.timings.visionEncoded).toBe(fit);
    expect(ok.done.timings.visionCacheHits).toBe(0);
  });
});
