// `npm run bench:browser [-- --frames 16] [-- --tokens 8] [-- --rebuild]`: the in-browser runtime on
// this machine's WebGPU adapter (headless Debian Chromium; SwiftShader without a GPU), through the
// real inference worker, with a benchmark checkpoint (make-tiny --size medium: ViT 256 wide, decoder
// 512 wide with 4 layers, the real 152k vocabulary) converted by the real converter. Prints adapter,
// dtype, time to first token, prefill and decode tokens/s, vision ms per frame, the decode loop's
// overhead against bare session.run calls on the same inputs (target ≤ 1.1), and a follow-up vs cold
// question on the same 16-frame range (time-to-first-token ratio, target ≥ 5; identical tokens).
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { convertCheckpoint } from './lib/converter.ts';
import { makeTinyCheckpoint } from './lib/tiny-checkpoint.ts';
import { openBenchPage, printResult, root } from './bench-page.ts';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  return v === undefined ? fallback : Number(v);
};
const FRAMES = arg('frames', 16);
const TOKENS = arg('tokens', 8);
// Decode steps per round, in alternating rounds of loop and bare runs (SwiftShader's step time wanders by ±20 %).
const STEPS = arg('steps', 6);
const ROUNDS = arg('rounds', 4);
const WIDTH = 320;
const HEIGHT = 180;
const WORK = join(root, '.cache', 'bench-runtime');
const MODEL = join(WORK, 'model');

/** The medium random checkpoint, converted once to q4 (WebGPU target); served by Vite from /@fs/. */
async function benchModel(): Promise<string> {
  if (process.argv.includes('--rebuild')) await rm(WORK, { recursive: true, force: true });
  if (!existsSync(join(MODEL, 'manifest.json'))) {
    console.log('building the benchmark model (make-tiny --size medium, converted to q4 and q4f16) …');
    const ckpt = join(WORK, 'checkpoint');
    await makeTinyCheckpoint({ outDir: ckpt, seed: 1, size: 'medium' });
    await convertCheckpoint({
      source: ckpt,
      out: MODEL,
      dtypes: ['q4', 'q4f16'],
      targets: ['webgpu'],
      name: 'Molmo2 benchmark (medium widths, random weights)',
      sourceLabel: { repo: 'molmo2-web/bench-medium', revision: 'seed-1' },
    });
  }
  return `/@fs${MODEL}/`;
}

const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? NaN;

async function main() {
  const url = await benchModel();
  const bp = await openBenchPage('e2e/runtime-harness.html');
  try {
    const { page } = bp;
    page.on('crash', () => console.error('[page] the page crashed (out of memory or a lost GPU device)'));
    // onnxruntime's own log of its first, CPU-fallback-free session attempt (src/runtime/sessions.ts
    // retries with the int64 index ops on the CPU, by design) is expected; anything else is shown.
    const expected = /fallback to CPU EP has been explicitly disabled|VerifyEachNodeIsAssignedToAnEp|Failed to load resource/;
    page.on('console', (m) => m.type() === 'error' && !expected.test(m.text()) && console.error(`[page] ${m.text()}`));
    page.on('response', (r) => r.status() >= 400 && console.error(`[page] HTTP ${r.status()} for ${r.url()}`));
    bp.browser.on('disconnected', () => console.error('[browser] disconnected'));
    await page.waitForFunction(() => document.body.dataset.ready === 'true');
    const caps = await page.evaluate(() => {
      window.harness.start();
      return window.harness.capabilities();
    });
    const adapter = caps.adapter ? `${caps.adapter.vendor} ${caps.adapter.architecture}${caps.adapter.isFallbackAdapter ? ' (fallback adapter)' : ''}` : 'none';
    const { model } = await page.evaluate((u) => window.harness.load({ kind: 'url', url: u }, { cache: false }), url);
    console.log(`adapter: ${adapter}; shader-f16 ${caps.shaderF16 ? 'yes' : 'no'}`);
    console.log(`model: ${model.name}, ${model.dtype}/${model.target}, ${model.kvCache} KV cache of ${model.maxContext} tokens; load ${fmt(model.timings.totalMs / 1000)} s (warm-up ${fmt(model.timings.warmUpMs / 1000)} s)`);

    const ask = (q: string) => page.evaluate(([qq, n, w, h, t]) => window.harness.askClip(qq, n, w, h, { maxNewTokens: t }), [q, FRAMES, WIDTH, HEIGHT, TOKENS] as const);
    // Cold: the first question over the range (vision for every frame, full prefill). Follow-up: another
    // question on the same frames (prefix kept). The follow-up's tokens are checked against the same
    // question prefilled from scratch (prefix dropped; the features are taken from the feature cache,
    // whose exactness e2e/runtime-reuse.spec.ts checks, to spare a second 16-frame vision pass).
    console.log(`cold question over ${FRAMES} frames …`);
    const cold = await ask('Point to the moving squares.');
    const q = 'How many squares are there?';
    console.log('follow-up question on the same frames …');
    const followUp = await ask(q);
    await page.evaluate(() => window.harness.clearCaches({ features: false }));
    console.log('the follow-up question prefilled from scratch …');
    const scratch = await ask(q);
    const c = cold.timings;
    const f = followUp.timings;
    const same = JSON.stringify(scratch.tokens) === JSON.stringify(followUp.tokens);
    const ratio = c.timeToFirstTokenMs / f.timeToFirstTokenMs;
    console.log(`decode loop vs bare session.run (${ROUNDS} alternating rounds of ${STEPS} steps) …`);
    const overhead = await page.evaluate(([qq, n, w, h, s, r]) => window.harness.decodeOverhead(qq, n, w, h, s, r), [q, FRAMES, WIDTH, HEIGHT, STEPS, ROUNDS] as const);

    console.log(`\ncold question over ${FRAMES} frames (${WIDTH}×${HEIGHT}), ${c.promptTokens} prompt tokens, ${c.generatedTokens} tokens generated`);
    console.log(`  preprocess                 ${fmt(c.preprocessMs)} ms (${fmt(c.preprocessMs / FRAMES)} ms per frame, CPU)`);
    console.log(`  vision encoder             ${fmt(c.visionMs / c.visionEncoded)} ms per frame (${c.visionEncoded} frames)`);
    console.log(`  prefill                    ${fmt(c.prefillTokensPerSecond)} tokens/s (${c.prefillTokens} tokens in ${fmt(c.prefillMs)} ms)`);
    console.log(`  time to first token        ${fmt(c.timeToFirstTokenMs)} ms`);
    console.log(`  decode                     ${fmt(c.decodeTokensPerSecond, 2)} tokens/s`);
    console.log(`follow-up question on the same frames`);
    console.log(`  vision encoder runs        ${f.visionEncoded} of ${f.visualItems} frames; ${f.prefixReusedTokens} prompt tokens kept, ${f.prefillTokens} prefilled`);
    console.log(`  time to first token        ${fmt(f.timeToFirstTokenMs)} ms`);
    console.log(`  answer tokens identical    ${same ? 'yes' : 'NO'} (${followUp.tokens.length} tokens)`);
    console.log(`  from scratch (no prefix)   ${fmt(scratch.timings.timeToFirstTokenMs)} ms to the first token; ${scratch.timings.visionCacheHits} frames from the feature cache`);
    console.log(`decode loop (${ROUNDS} × ${overhead.steps} steps at ${c.promptTokens}+ tokens): ${fmt(overhead.loopMsPerToken)} ms/token; bare session.run ${fmt(overhead.bareMsPerToken)} ms`);
    // Where a gap comes from: each loop step's session.run against the bare runs, round by round.
    const list = (xs: number[]) => xs.map((x) => fmt(x, 0)).join(' ');
    console.log(`  session.run in the loop  ${list(overhead.loopRunMs)} ms (median ${fmt(median(overhead.loopRunMs), 0)})`);
    console.log(`  bare session.run         ${list(overhead.bareRunMs)} ms (median ${fmt(median(overhead.bareRunMs), 0)})`);
    console.log('');
    console.log(`  ratio cold / follow-up time to first token   ${fmt(ratio, 2)}   (target ≥ 5)`);
    console.log(`  ratio decode loop / bare session.run          ${fmt(overhead.ratio, 3)}   (target ≤ 1.1)`);
    printResult({
      name: 'browser',
      adapter,
      figures: {
        dtype: model.dtype,
        frames: FRAMES,
        promptTokens: c.promptTokens,
        coldTtftMs: c.timeToFirstTokenMs,
        followUpTtftMs: f.timeToFirstTokenMs,
        scratchTtftMs: scratch.timings.timeToFirstTokenMs,
        visionMsPerFrame: c.visionMs / c.visionEncoded,
        prefillTokensPerSecond: c.prefillTokensPerSecond,
        decodeTokensPerSecond: c.decodeTokensPerSecond,
        loopMsPerToken: overhead.loopMsPerToken,
        bareMsPerToken: overhead.bareMsPerToken,
        identicalTokens: same,
      },
      targets: [
        { name: `time to first token, cold ÷ follow-up (${FRAMES} frames)`, value: ratio, target: 5, op: '>=' },
        { name: 'decode loop ÷ bare session.run per token', value: overhead.ratio, target: 1.1, op: '<=' },
        { name: 'follow-up answer tokens identical to a from-scratch prefill (1 = yes)', value: same ? 1 : 0, target: 1, op: '>=' },
      ],
    });
    if (!same) process.exitCode = 1;
  } finally {
    await bp.close();
  }
}

await main().catch((e) => {
  console.error(`bench:browser: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
