// The subgroup guard: on adapters with subgroups narrower than 8 lanes (SwiftShader: 4), onnxruntime
// 1.30's subgroup FlashAttention returns wrong attention for ≥ 32 query rows. With the guard the same
// graphs match a plain JS reference.
import { expect, test, type Page } from '@playwright/test';
import { attentionReference, causalGqa, maxAbsDiff, mhaWithBias, randomValues } from './runtime-graphs.ts';

type Feeds = Record<string, { type: 'float32' | 'int32'; data: number[]; dims: number[] }>;

async function run(page: Page, guard: 'auto' | 'never', model: Uint8Array, feeds: Feeds) {
  return page.evaluate(([g, m, f]) => window.harness.runGraph(g, m, f, 'o'), [guard, Array.from(model), feeds] as const);
}

test.describe('subgroup guard', () => {
  test.beforeEach(async ({ page }) => {
    await page.goto('/e2e/runtime-harness.html');
    await expect(page.locator('body')).toHaveAttribute('data-ready', 'true');
  });

  test('MHA with the Molmo2 prefill mask and 40 query rows is correct with the guard', async ({ page }) => {
    const H = 8;
    const D = 128;
    const S = 40;
    // Positions 5..30 are image tokens: they see each other both ways; everything else is causal.
    const isImage = (p: number) => p >= 5 && p <= 30;
    const allowed = (q: number, k: number) => k <= q || (isImage(q) && isImage(k));
    const q = randomValues(S * H * D, 1, 2);
    const k = randomValues(S * H * D, 2, 2);
    const v = randomValues(S * H * D, 3, 1);
    const bias = Float32Array.from({ length: S * S }, (_, i) => (allowed(Math.floor(i / S), i % S) ? 0 : -1e4));
    const expected = attentionReference(q, k, v, { S, T: S, qHeads: H, kvHeads: H, headDim: D, allowed });
    const causalOnly = attentionReference(q, k, v, { S, T: S, qHeads: H, kvHeads: H, headDim: D, allowed: (a, b) => b <= a });
    const feeds: Feeds = {
      q: { type: 'float32', data: Array.from(q), dims: [1, S, H * D] },
      k: { type: 'float32', data: Array.from(k), dims: [1, S, H * D] },
      v: { type: 'float32', data: Array.from(v), dims: [1, S, H * D] },
      bias: { type: 'float32', data: Array.from(bias), dims: [1, 1, S, S] },
    };
    const model = mhaWithBias(H, D);

    const guarded = await run(page, 'auto', model, feeds);
    const caps = guarded.capabilities;
    test.info().annotations.push({ type: 'adapter', description: JSON.stringify({ adapter: caps.adapter, subgroupSizes: caps.subgroupSizes, guard: caps.subgroupGuard }) });
    expect(maxAbsDiff(guarded.data, expected)).toBeLessThan(1e-4);
    // The check discriminates: the bidirectional image block changes the answer.
    expect(maxAbsDiff(guarded.data, causalOnly)).toBeGreaterThan(0.05);

    const narrow = caps.subgroupSizes !== undefined && caps.subgroupSizes[0] < 8 && caps.subgroups;
    expect(caps.subgroupGuard).toBe(narrow);
    if (narrow) {
      // Without the guard the same graph is wrong on this adapter: the guard is what makes it right.
      const unguarded = await run(page, 'never', model, feeds);
      expect(unguarded.capabilities.subgroupGuard).toBe(false);
      expect(maxAbsDiff(unguarded.data, expected)).toBeGreaterThan(0.05);
    }
  });

  test('causal GQA (8 query / 2 KV heads) with 40 query rows is correct with the guard', async ({ page }) => {
    const Hq = 8;
    const Hkv = 2;
    const D = 128;
    const S = 40;
    const q = randomValues(S * Hq * D, 4, 2);
    const k = randomValues(S * Hkv * D, 5, 2);
    const v = randomValues(S * Hkv * D, 6, 1);
    const expected = attentionReference(q, k, v, { S, T: S, qHeads: Hq, kvHeads: Hkv, headDim: D, allowed: (a, b) => b <= a });
    const feeds: Feeds = {
      q: { type: 'float32', data: Array.from(q), dims: [1, S, Hq * D] },
      k: { type: 'float32', data: Array.from(k), dims: [1, S, Hkv * D] },
      v: { type: 'float32', data: Array.from(v), dims: [1, S, Hkv * D] },
      seqlens_k: { type: 'int32', data: [S - 1], dims: [1] },
      total_seq: { type: 'int32', data: [S], dims: [] },
    };
    const model = causalGqa(Hq, Hkv, D);
    const guarded = await run(page, 'auto', model, feeds);
    expect(maxAbsDiff(guarded.data, expected)).toBeLessThan(1e-4);
    const caps = guarded.capabilities;
    if (caps.subgroupGuard) {
      const unguarded = await run(page, 'never', model, feeds);
      expect(maxAbsDiff(unguarded.data, expected)).toBeGreaterThan(0.05);
    }
  });
});
