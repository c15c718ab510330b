// The Molmo2 family beyond the 4B in the browser runtime: tiny checkpoints made from the Molmo2-8B,
// Molmo2-VideoPoint-4B and Molmo2-O-7B config.json (every key and value of the published file, their
// unseen values filled as tools/lib/published-configs.ts lists, with the runtime test model's tiny
// widths and seed; O-7B with OLMo-3's generated tokenizer and ids), converted by the real converter and
// answered by the inference worker on SwiftShader WebGPU with the reference's greedy tokens. Their
// weights have an lm_head of their own (untied, as Qwen3-8B's and OLMo-3's), so a runtime that read the
// embedding in its place would answer differently.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import type { Manifest } from '../src/molmo2/manifest.ts';
import { names } from '../src/molmo2/tensors.ts';
import type { Family } from '../tools/lib/tiny-checkpoint.ts';
import { convertTestModel, ensureRuntimeModel, MODEL_DIR, runtimeModelParts } from './runtime-model.ts';
import { maxAbsDiff, picture, RuntimeReference } from './runtime-reference.ts';
import { ask, load, openHarness } from './runtime-page.ts';

const FAMILIES: { family: Family; name: string }[] = [
  { family: '8b', name: 'Molmo2-8B' },
  { family: 'videopoint-4b', name: 'Molmo2-VideoPoint-4B' },
  { family: 'o-7b', name: 'Molmo2-O-7B' },
];
const folder = (family: Family) => `e2e-runtime-${family}`;

test.beforeAll(async () => {
  test.setTimeout(300_000);
  await ensureRuntimeModel(); // the same widths under Molmo2-4B's config, for the comparison below
  for (const { family, name } of FAMILIES) {
    await convertTestModel(join(MODEL_DIR, '..', folder(family)), {
      ...(await runtimeModelParts(family)),
      name: `${name} e2e tiny (random weights)`,
      source: { repo: `molmo2-web/${folder(family)}`, revision: 'seed-5' },
      convert: { dtypes: ['fp32'], targets: ['webgpu'] },
    });
  }
});

test.afterAll(() => {
  for (const { family } of FAMILIES) rmSync(join(MODEL_DIR, '..', folder(family)), { recursive: true, force: true });
});

test('Molmo2-8B, VideoPoint-4B and O-7B tiny checkpoints convert and answer a video question with the reference tokens', async ({ page }) => {
  test.setTimeout(420_000);
  const frames = [0, 0.5, 1].map((t, i) => ({ image: picture(64, 36, 30 + i), timestamp: t }));
  const question = 'Track the ball.';
  const as4b = await RuntimeReference.create(await runtimeModelParts('4b'));
  await openHarness(page);
  for (const { family, name } of FAMILIES) {
    const parts = await runtimeModelParts(family);
    const dir = join(MODEL_DIR, '..', folder(family));
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
    expect(manifest.name).toBe(`${name} e2e tiny (random weights)`);
    const lmHead = await parts.tensors.read(names.lmHead);
    const embedding = await parts.tensors.read(names.embedding);
    expect(maxAbsDiff(lmHead, embedding.subarray(0, lmHead.length))).toBeGreaterThan(0.1);

    const want = (await RuntimeReference.create(parts, parts.tensors, dir)).answer(question, { frames }, 5);
    const { model } = await load(page, { dtype: 'fp32', warmUp: false }, `/models/${folder(family)}/`);
    expect(model.kvCache).toBe('static');
    // The panel's card: the member read from the source's last part ("e2e-runtime-8b"), its
    // abilities, and the GPU check made before the download (SwiftShader probes small models).
    expect(model.card.variant, name).toBe(name);
    // Random weights: nothing it answers means anything, whatever the member.
    expect(model.card.abilities).toEqual([]);
    expect(model.card.note).toMatch(/Random weights/);
    expect(model.gpuFit.allocatableBytes).toBe(model.gpuFit.needBytes);
    const a = await ask(page, question, { kind: 'video', frames }, { maxNewTokens: 5, returnLogits: true });
    expect(a.done.tokens, name).toEqual(want.tokens);
    const worst = Math.max(...want.logits.map((l, i) => maxAbsDiff(a.done.logits![i], l)));
    expect(worst, name).toBeLessThan(2e-3);

    // O-7B: the OLMo-3 decoder (post-norm, YaRN on its last layer, full multi-head attention) with its
    // own vocabulary and ids; its weights do not fit Molmo2-4B's config, so the comparison below is moot.
    if (family === 'o-7b') {
      expect(parts.config.text).toMatchObject({ normAfter: true, qkNormType: 'olmo', vocabSize: 100278, ropeScalingLayers: [2] });
      expect(a.done.tokens.every((id) => id < parts.config.text.vocabSize)).toBe(true);
      test.info().annotations.push({ type: `${name} (fp32, SwiftShader)`, description: JSON.stringify(a.done.timings) });
      continue;
    }
    // The 8B config's own values reach the answer: the same weights under Molmo2-4B's config (rope_theta
    // 5e6 against 1e6) give other logits. VideoPoint-4B's config is the 4B's, so its answer is the 4B's.
    const same = as4b.answer(question, { frames }, 5);
    const apart = maxAbsDiff(same.logits[0], want.logits[0]);
    if (family === '8b') expect(apart).toBeGreaterThan(1e-3);
    else expect(apart).toBe(0);
    test.info().annotations.push({ type: `${name} (fp32, SwiftShader)`, description: JSON.stringify(a.done.timings) });
  }
});
