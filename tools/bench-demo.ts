// `npm run bench:demo [-- --scenes 30] [--browser-scenes 6]`: the demo model (tools/train-demo/) on test
// scenes it never trained on, scored against the generator's ground truth — point hit rate (a true
// centre with an answered point within 3% of the width), count accuracy, mean track error in pixels —
// for the fp32 reference on the shipped weights, and for the q4 and fp32 variants as the browser
// runtime runs them (the app's inference worker in headless Chromium; SwiftShader without a GPU), with
// that runtime's speed on this machine: load time, time to first token, decode tokens/s.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ReferenceModel } from '../src/molmo2/reference/index.ts';
import { renderFrame, frameTimeS, type Scene } from '../src/demo/scenes.ts';
import { readCheckpointFolder, SafetensorsCheckpoint } from './lib/checkpoint.ts';
import { DEMO_WEIGHTS_FILE } from './lib/demo-checkpoint.ts';
import { convertDemoModel, isDemoConversionOf } from './prepare-default-model.ts';
import { DEMO_SPLITS } from './train-demo/curriculum.ts';
import { accuracySummary, evaluateDemo, referenceAnswerer, type Answerer, type DemoAccuracy } from './train-demo/evaluate.ts';
import { loadSampleContext } from './train-demo/samples.ts';
import { openBenchPage, printResult, root } from './bench-page.ts';
import { startHarness } from '../e2e/runtime-page.ts';
import type { PlainImage } from '../e2e/runtime-reference.ts';

const { values } = parseArgs({ options: { scenes: { type: 'string', default: '30' }, 'browser-scenes': { type: 'string', default: '6' } } });
const SCENES = Number(values.scenes);
const BROWSER_SCENES = Number(values['browser-scenes']);
const WORK = join(root, '.cache', 'bench-demo');
const MODEL = join(WORK, 'model');
const CHECKPOINT = join(WORK, 'checkpoint');
const MAX_NEW_TOKENS = 160;

function plain(scene: Scene, frame: number): PlainImage {
  const rgb = renderFrame(scene, frame);
  const rgba: number[] = new Array(scene.width * scene.height * 4);
  for (let i = 0; i < scene.width * scene.height; i++) {
    rgba[4 * i] = rgb[3 * i];
    rgba[4 * i + 1] = rgb[3 * i + 1];
    rgba[4 * i + 2] = rgb[3 * i + 2];
    rgba[4 * i + 3] = 255;
  }
  return { width: scene.width, height: scene.height, rgba };
}

interface Speed {
  answers: number;
  ttftMs: number[];
  decodeTokensPerSecond: number[];
  visionMsPerFrame: number[];
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const rate = (n: number, d: number) => (d ? n / d : NaN);

function figures(a: DemoAccuracy) {
  return {
    pointHitRate: rate(a.point.hits, a.point.truth),
    pointsAnsweredPerTruth: rate(a.point.answered, a.point.truth),
    countAccuracy: rate(a.count.correct, a.count.questions),
    trackFramesFound: rate(a.track.found, a.track.frames),
    trackMeanErrorPx: a.track.meanErrorPx,
  };
}

async function main() {
  if (!existsSync(DEMO_WEIGHTS_FILE)) throw new Error(`no demo weights at ${DEMO_WEIGHTS_FILE}: run npm run train-demo -- --ship`);
  if (!(await isDemoConversionOf(MODEL, DEMO_WEIGHTS_FILE))) {
    console.log('converting the demo model (q4 + fp32, WebGPU) …');
    await convertDemoModel(MODEL, CHECKPOINT);
  }
  const ctx = await loadSampleContext(CHECKPOINT);

  console.log(`fp32 reference (Node), ${SCENES} test scenes …`);
  const source = await SafetensorsCheckpoint.open(await readCheckpointFolder(CHECKPOINT));
  const reference = await ReferenceModel.load(ctx.config, source);
  await source.close();
  const refStarted = performance.now();
  const ref = await evaluateDemo(referenceAnswerer(reference, ctx, MAX_NEW_TOKENS), DEMO_SPLITS.test, SCENES);
  console.log(`${accuracySummary(ref)}\n(${fmt((performance.now() - refStarted) / 1000)} s)`);

  const bp = await openBenchPage('e2e/runtime-harness.html');
  const runtime: Record<string, { accuracy: DemoAccuracy; speed: Speed; loadS: number }> = {};
  let adapterName = '';
  try {
    const { page } = bp;
    const { adapter } = await startHarness(page);
    adapterName = adapter;
    for (const dtype of ['q4', 'fp32'] as const) {
      const { model } = await page.evaluate(([u, d]) => window.harness.load({ kind: 'url', url: u }, { cache: false, dtype: d }), [`/@fs${MODEL}/`, dtype] as const);
      const speed: Speed = { answers: 0, ttftMs: [], decodeTokensPerSecond: [], visionMsPerFrame: [] };
      const answer: Answerer = async (scene, qa) => {
        const visual =
          scene.kind === 'image'
            ? { kind: 'images' as const, images: [plain(scene, 0)] }
            : { kind: 'video' as const, frames: Array.from({ length: scene.frames }, (_, k) => ({ image: plain(scene, k), timestamp: frameTimeS(scene, k) })) };
        const { done } = await page.evaluate(([q, v, n]) => window.harness.ask(q, v, { maxNewTokens: n }), [qa.question, visual, MAX_NEW_TOKENS] as const);
        const t = done.timings;
        speed.answers++;
        speed.ttftMs.push(t.timeToFirstTokenMs);
        if (t.generatedTokens > 1) speed.decodeTokensPerSecond.push(t.decodeTokensPerSecond);
        if (t.visionEncoded) speed.visionMsPerFrame.push(t.visionMs / t.visionEncoded);
        return done.text;
      };
      console.log(`browser runtime, ${dtype}, ${BROWSER_SCENES} test scenes …`);
      const accuracy = await evaluateDemo(answer, DEMO_SPLITS.test, BROWSER_SCENES);
      runtime[dtype] = { accuracy, speed, loadS: model.timings.totalMs / 1000 };
      console.log(accuracySummary(accuracy));
      console.log(
        `load ${fmt(model.timings.totalMs / 1000)} s; time to first token ${fmt(mean(speed.ttftMs))} ms; decode ${fmt(mean(speed.decodeTokensPerSecond), 2)} tokens/s; vision ${fmt(mean(speed.visionMsPerFrame))} ms/frame`,
      );
      await page.evaluate(() => window.harness.unload());
    }
  } finally {
    await bp.close();
  }

  const q4 = figures(runtime.q4.accuracy);
  const r = figures(ref);
  printResult({
    name: 'demo',
    adapter: adapterName,
    figures: {
      referenceScenes: SCENES,
      browserScenes: BROWSER_SCENES,
      reference: r,
      q4,
      fp32: figures(runtime.fp32.accuracy),
      q4LoadS: runtime.q4.loadS,
      q4TimeToFirstTokenMs: mean(runtime.q4.speed.ttftMs),
      q4DecodeTokensPerSecond: mean(runtime.q4.speed.decodeTokensPerSecond),
      q4VisionMsPerFrame: mean(runtime.q4.speed.visionMsPerFrame),
    },
    targets: [
      { name: `demo point hit rate, fp32 reference (${SCENES} test scenes)`, value: r.pointHitRate, target: 0.8, op: '>=' },
      { name: `demo count accuracy, fp32 reference (${SCENES} test scenes)`, value: r.countAccuracy, target: 0.7, op: '>=' },
      { name: 'demo mean track error, fp32 reference (px of 378)', value: r.trackMeanErrorPx, target: 11.3, op: '<=' },
      { name: `demo point hit rate, q4 in the browser (${BROWSER_SCENES} test scenes)`, value: q4.pointHitRate, target: 0.8, op: '>=' },
    ],
  });
}

await main().catch((e) => {
  console.error(`bench:demo: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
