// `npm run bench:full-size [-- --size 4b|8b] [--dtype q4] [--tokens 3] [--context 4096] [--no-frame]
//   [--load-only] [--no-warm-up] [--build asyncify]`:
// a random checkpoint with the published Molmo2-4B (or 8B) widths and depths (make-tiny --size 4b),
// converted by the real converter (webgpu target), loaded from its folder through the app's inference
// worker in headless Debian Chromium, then a text-only question and a one-frame question, each a few
// tokens. Prints conversion time and sizes per file, load time, how onnxruntime read the weights
// (ranges, largest read), the Chromium processes' resident memory in each stage of the load (files
// checked, sessions made, warm-up; the renderer's rise against the largest weight file is the
// lean-loading target: the renderer's resident memory counts the worker's JS heap, onnxruntime's wasm
// memory and any weight bytes read into memory; performance.memory is not exposed in workers), vision s per frame, prefill and decode tokens/s. `--build asyncify` hides
// JSPI from the worker, so onnxruntime-web's other build (whole-file reads) can be measured beside it. On SwiftShader (no GPU here) the speeds count work, not a user's speed, and the run
// takes tens of minutes; q4 is the default because SwiftShader has no shader-f16.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Dtype, Manifest } from '../src/molmo2/manifest.ts';
import { convertCheckpoint } from './lib/converter.ts';
import { chromiumRss, peakRss, sampleChromiumRss } from './lib/process-memory.ts';
import { makeTinyCheckpoint } from './lib/tiny-checkpoint.ts';
import { openBenchPage, printResult, root } from './bench-page.ts';
import { ortReadsOf, recordOrtReads } from '../e2e/ort-reads.ts';
import { chooseFolder, startHarness } from '../e2e/runtime-page.ts';

const option = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : (process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
};
const SIZE = option('size', '4b') as '4b' | '8b';
const DTYPE = option('dtype', 'q4') as Dtype;
const TOKENS = Number(option('tokens', '3'));
const CONTEXT = Number(option('context', '4096'));
const LOAD_ONLY = process.argv.includes('--load-only');
const WITH_FRAME = !process.argv.includes('--no-frame') && !LOAD_ONLY;
const WARM_UP = !process.argv.includes('--no-warm-up');
const HIDE_JSPI = option('build', 'jspi') === 'asyncify';
// The checkpoint is shared with `npm run bench:convert -- --size 4b|8b`.
const CHECKPOINT = join(root, '.cache', `${SIZE}-checkpoint`);
const MODEL = join(root, '.cache', `${SIZE}-${DTYPE}-webgpu`);

const MB = (b: number) => `${(b / 1e6).toFixed(0)} MB`;
const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

/** The full-size random checkpoint and its conversion, made once and kept in .cache. */
async function ensureModel(): Promise<Manifest> {
  if (!existsSync(join(CHECKPOINT, 'config.json'))) {
    console.log(`writing the ${SIZE} random checkpoint (BF16, about ${SIZE === '4b' ? 10 : 17} GB) …`);
    const t = performance.now();
    await makeTinyCheckpoint({ outDir: CHECKPOINT, seed: 0, size: SIZE, log: (m) => console.log(`  ${m}`) });
    console.log(`  ${fmt((performance.now() - t) / 1000)} s`);
  }
  if (!existsSync(join(MODEL, 'manifest.json'))) {
    console.log(`converting to ${DTYPE}/webgpu …`);
    const t = performance.now();
    await convertCheckpoint({
      source: CHECKPOINT,
      out: MODEL,
      dtypes: [DTYPE],
      targets: ['webgpu'],
      name: `Molmo2-${SIZE.toUpperCase()} widths (random weights)`,
      sourceLabel: { repo: `molmo2-web/full-size-${SIZE}`, revision: 'seed-0' },
    });
    console.log(`  converted in ${fmt((performance.now() - t) / 1000)} s (converter peak RSS: npm run bench:convert measures it)`);
  }
  return JSON.parse(readFileSync(join(MODEL, 'manifest.json'), 'utf8')) as Manifest;
}

async function main() {
  const manifest = await ensureModel();
  const variant = manifest.variants.find((v) => v.dtype === DTYPE && v.target === 'webgpu');
  if (!variant) throw new Error(`${MODEL} has no ${DTYPE}/webgpu variant`);
  const weightFiles = [...variant.vision.externalData, ...variant.decoder.externalData].map((p) => ({ path: p, bytes: statSync(join(MODEL, p)).size }));
  const largestFile = Math.max(...weightFiles.map((f) => f.bytes));
  const totalWeights = weightFiles.reduce((s, f) => s + f.bytes, 0);
  console.log(`\nmodel folder ${MODEL}`);
  for (const f of weightFiles) console.log(`  ${f.path.padEnd(36)} ${MB(f.bytes).padStart(9)}`);
  console.log(`  weights ${MB(totalWeights)} in ${weightFiles.length} files, largest ${MB(largestFile)}`);

  const bp = await openBenchPage('e2e/runtime-harness.html');
  try {
    const { page } = bp;
    page.on('crash', () => console.error('[page] the page crashed (out of memory or a lost GPU device)'));
    bp.browser?.on('disconnected', () => console.error('[browser] disconnected'));
    const { caps, adapter } = await startHarness(page);
    console.log(`adapter: ${adapter}; shader-f16 ${caps.shaderF16 ? 'yes' : 'no'}`);
    const worker = page.workers().find((w) => w.url().includes('inference.worker'));
    if (!worker) throw new Error('the inference worker did not start');
    await recordOrtReads(worker, HIDE_JSPI);
    await chooseFolder(page, MODEL);

    // Load from the picked folder (Files on disk, as a user's converted folder): no download, so the
    // figures are the sessions' own reading of the weights. The page and worker idle before it.
    await page.waitForTimeout(2000);
    const before = chromiumRss();
    const rss = sampleChromiumRss(200);
    console.log(`loading (${DTYPE}, KV cache of ${CONTEXT} tokens${WARM_UP ? '' : ', no warm-up'}) …`);
    const { model, stages } = await page.evaluate(([ctx, warmUp]) => window.harness.loadFromInput('#folder', { cache: false, maxContext: ctx, warmUp }), [CONTEXT, WARM_UP] as const);
    const samples = rss.stop();
    const after = chromiumRss();
    const peak = peakRss(samples);
    // The stages' windows: files checked (sha256), sessions made (weights to the GPU), warm-up.
    const at = (stage: string) => stages.find((s) => s.stage === stage)?.at ?? NaN;
    const sessionsFrom = at('preparing');
    const sessionsTo = sessionsFrom + model.timings.prepareMs;
    const windows = [
      ['files checked', at('download'), sessionsFrom],
      ['sessions made', sessionsFrom, sessionsTo],
      ['warm-up', sessionsTo, at('ready')],
    ] as const;
    const reads = await ortReadsOf(worker);
    const largestRead = Math.max(0, ...reads.slices, ...reads.wholeReads);
    const sessionsPeak = peakRss(samples, sessionsFrom, sessionsTo);
    const rendererRatio = (peak.renderer - before.renderer) / largestFile;
    const sessionsRatio = (sessionsPeak.renderer - before.renderer) / largestFile;

    console.log(`\nload: ${fmt(model.timings.totalMs / 1000)} s (files ${fmt(model.timings.downloadMs / 1000)} s, sessions ${fmt(model.timings.prepareMs / 1000)} s, warm-up ${fmt(model.timings.warmUpMs / 1000)} s); onnxruntime-web build ${model.ortBuild}; ${model.kvCache} KV cache of ${model.maxContext} tokens`);
    console.log(`  weights read by onnxruntime   ${reads.slices.length} ranges + ${reads.wholeReads.length} whole files; largest read ${MB(largestRead)} (largest file ${MB(largestFile)})`);
    console.log(`  resident memory, peak in each stage (before the load: renderer ${MB(before.renderer)}, GPU process ${MB(before.gpu)}):`);
    for (const [name, from, to] of windows) {
      // A stage too short for a sample (the warm-up with --no-warm-up) has no peak to show.
      if (!samples.some((x) => x.at >= from && x.at <= to)) continue;
      const p = peakRss(samples, from, to);
      console.log(`    ${name.padEnd(14)} ${fmt((to - from) / 1000).padStart(6)} s   renderer (page + workers) +${MB(p.renderer - before.renderer)}   GPU process (SwiftShader's buffers) +${MB(p.gpu - before.gpu)}`);
    }
    console.log(`  after the load: renderer ${MB(after.renderer)}, GPU process ${MB(after.gpu)}`);
    console.log(`  renderer rise ÷ largest file  ${fmt(rendererRatio, 2)} over the whole load, ${fmt(sessionsRatio, 2)} while the sessions are made  (target < 1.2; the sum of the weights would be ${fmt(totalWeights / largestFile, 2)})`);
    for (const w of model.warnings) console.log(`  warning: ${w}`);
    for (const p of model.placement) console.log(`  ${p.graph} placement: ${p.cpuNodes.length} nodes on the CPU`);

    const print = (label: string, t: Awaited<ReturnType<typeof window.harness.askClip>>['timings'], text: string, wallMs: number) => {
      console.log(`\n${label}: ${t.promptTokens} prompt tokens, ${t.generatedTokens} generated ("${text.slice(0, 40)}"); ${fmt(wallMs / 1000)} s from the call to the answer`);
      if (t.visionEncoded) console.log(`  vision encoder     ${fmt(t.visionMs / t.visionEncoded / 1000)} s per frame (preprocess ${fmt(t.preprocessMs)} ms)`);
      console.log(`  prefill            ${fmt(t.prefillTokensPerSecond, 2)} tokens/s (${t.prefillTokens} tokens in ${fmt(t.prefillMs / 1000)} s)`);
      console.log(`  time to first token ${fmt(t.timeToFirstTokenMs / 1000)} s`);
      console.log(`  decode             ${fmt(t.decodeTokensPerSecond, 3)} tokens/s`);
    };
    if (LOAD_ONLY) {
      printResult({ name: 'full-size', adapter, figures: { size: SIZE, dtype: DTYPE, ortBuild: model.ortBuild, largestReadBytes: largestRead, loadMs: model.timings.totalMs, rendererRssRiseBytes: peak.renderer - before.renderer, sessionsRendererRssRiseBytes: sessionsPeak.renderer - before.renderer } });
      return;
    }
    console.log(`\ntext-only question (${TOKENS} tokens) …`);
    let t0 = performance.now();
    const text = await page.evaluate((n) => window.harness.ask('What is the capital of France?', { kind: 'none' }, { maxNewTokens: n }), TOKENS);
    print('text-only question', text.done.timings, text.done.text, performance.now() - t0);
    let frame: Awaited<ReturnType<typeof window.harness.askClip>> | undefined;
    if (WITH_FRAME) {
      console.log(`\none-frame question (${TOKENS} tokens) …`);
      t0 = performance.now();
      frame = await page.evaluate((n) => window.harness.askClip('Point to the squares.', 1, 320, 180, { maxNewTokens: n }), TOKENS);
      print('one-frame question', frame.timings, frame.text, performance.now() - t0);
    }
    printResult({
      name: 'full-size',
      adapter,
      figures: {
        size: SIZE,
        dtype: DTYPE,
        ortBuild: model.ortBuild,
        weightBytes: totalWeights,
        largestFileBytes: largestFile,
        largestReadBytes: largestRead,
        loadMs: model.timings.totalMs,
        rendererRssRiseBytes: peak.renderer - before.renderer,
        sessionsRendererRssRiseBytes: sessionsPeak.renderer - before.renderer,
        gpuProcessRssRiseBytes: peak.gpu - before.gpu,
        textPrefillTokensPerSecond: text.done.timings.prefillTokensPerSecond,
        textDecodeTokensPerSecond: text.done.timings.decodeTokensPerSecond,
        visionMsPerFrame: frame ? frame.timings.visionMs / frame.timings.visionEncoded : null,
        framePrefillTokensPerSecond: frame?.timings.prefillTokensPerSecond ?? null,
        frameDecodeTokensPerSecond: frame?.timings.decodeTokensPerSecond ?? null,
      },
      targets: [{ name: `renderer RSS rise while the sessions are made ÷ largest weight file (${SIZE} ${DTYPE}, ${model.ortBuild} build)`, value: sessionsRatio, target: 1.2, op: '<' }],
    });
  } finally {
    await bp.close();
  }
}

await main().catch((e) => {
  console.error(`bench:full-size: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
