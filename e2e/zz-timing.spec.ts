import { test } from '@playwright/test';
import { ensureRuntimeModel } from './runtime-model.ts';
import { picture, RuntimeReference } from './runtime-reference.ts';
import { ask, load, openHarness } from './runtime-page.ts';

let reference: RuntimeReference;
const T0 = performance.now();
const log = (m: string) => console.log(`[t=${((performance.now() - T0) / 1000).toFixed(1)}s] ${m}`);

test.beforeAll(async () => {
  test.setTimeout(600_000);
  let t = performance.now();
  const model = await ensureRuntimeModel((m) => log(`build: ${m}`));
  log(`ensureRuntimeModel ${((performance.now() - t) / 1000).toFixed(1)}s`);
  t = performance.now();
  reference = await RuntimeReference.create(model);
  log(`reference create ${((performance.now() - t) / 1000).toFixed(1)}s`);
});

test('phases', async ({ page }) => {
  test.setTimeout(900_000);
  page.on('console', (m) => log(`page: ${m.text()}`));
  page.on('worker', (w) => log(`worker: ${w.url()}`));
  let t = performance.now();
  await openHarness(page);
  log(`openHarness ${((performance.now() - t) / 1000).toFixed(1)}s`);
  t = performance.now();
  const l1 = await load(page);
  log(`load q4 warm ${((performance.now() - t) / 1000).toFixed(1)}s ${JSON.stringify(l1.model.timings)} cpuNodes=${JSON.stringify(l1.model.cpuNodes)} pre=${l1.model.preprocess} ctx=${l1.model.maxContext}`);
  t = performance.now();
  const a0 = await ask(page, 'Hi', { kind: 'none' }, { maxNewTokens: 2 });
  log(`ask Hi q4 ${((performance.now() - t) / 1000).toFixed(1)}s ${JSON.stringify(a0.done.timings)}`);
  t = performance.now();
  const l2 = await load(page, { dtype: 'fp32', warmUp: false });
  log(`load fp32 nowarm ${((performance.now() - t) / 1000).toFixed(1)}s ${JSON.stringify(l2.model.timings)} cpuNodes=${JSON.stringify(l2.model.cpuNodes)} ctx=${l2.model.maxContext}`);
  t = performance.now();
  const a1 = await ask(page, 'Hi', { kind: 'none' }, { maxNewTokens: 2, returnLogits: true });
  log(`ask Hi fp32 ${((performance.now() - t) / 1000).toFixed(1)}s ${JSON.stringify(a1.done.timings)}`);
  t = performance.now();
  const image = picture(72, 50, 1);
  const a2 = await ask(page, 'Point to the red square.', { kind: 'images', images: [image] }, { maxNewTokens: 6, bitmaps: true, returnLogits: true });
  log(`ask image fp32 ${((performance.now() - t) / 1000).toFixed(1)}s ${JSON.stringify(a2.done.timings)}`);
  t = performance.now();
  reference.answer('Point to the red square.', { images: [image] }, 6);
  log(`reference image ${((performance.now() - t) / 1000).toFixed(1)}s`);
});
