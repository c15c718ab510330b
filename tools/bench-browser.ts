// `npm run bench:browser [-- --frames 16] [-- --tokens 8] [-- --rebuild]`: the in-browser runtime on
// this machine's WebGPU adapter (headless Debian Chromium; SwiftShader without a GPU), through the
// app's inference engine in the harness's worker, with a benchmark checkpoint (make-tiny --size medium:
// ViT 256 wide, decoder 512 wide with 4 layers, the real 152k vocabulary) converted by the real
// converter. Prints adapter, dtype, time to first token, prefill and decode tokens/s, vision ms per
// frame, and what prefix reuse saves: a follow-up's time to first token against a from-scratch prefill
// of the same frames whose vision features are cached (target ≥ 5), so the ratio leaves vision out.
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { convertCheckpoint } from './lib/converter.ts';
import { makeTinyCheckpoint } from './lib/tiny-checkpoint.ts';
import { openBenchPage, printResult, root } from './bench-page.ts';
import { startHarness } from '../e2e/runtime-page.ts';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  return v === undefined ? fallback : Number(v);
};
const FRAMES = arg('frames', 16);
const TOKENS = arg('tokens', 8);
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
    bp.browser?.on('disconnected', () => console.error('[browser] disconnected'));
    const { caps, adapter } = await startHarness(page);
    const { model } = await page.evaluate((u) => window.harness.load({ kind: 'url', url: u }, { cache: false }), url);
    console.log(`adapter: ${adapter}; shader-f16 ${caps.shaderF16 ? 'yes' : 'no'}`);
    console.log(`model: ${model.name}, ${model.dtype}/${model.target}, ${model.kvCache} KV cache of ${model.maxContext} tokens; load ${fmt(model.timings.totalMs / 1000)} s (warm-up ${fmt(model.timings.warmUpMs / 1000)} s)`);

    const ask = (q: string, reusePrefix?: boolean) =>
      page.evaluate(([qq, n, w, h, t, r]) => window.harness.askClip(qq, n, w, h, { maxNewTokens: t, reusePrefix: r }), [q, FRAMES, WIDTH, HEIGHT, TOKENS, reusePrefix] as const);
    // Cold: the first question over the range (vision for every frame, full prefill; fills the feature
    // cache). From scratch: the same question again with prefix reuse switched off (a full prefill, the
    // features from the cache). Follow-up: another question on the same frames, prefix kept.
    console.log(`cold question over ${FRAMES} frames …`);
    const q = 'Point to the moving squares.';
    const cold = await ask(q);
    console.log('the same question prefilled from scratch (features cached) …');
    const scratch = await ask(q, false);
    console.log('follow-up question on the same frames (prefix kept) …');
    const followUp = await ask('How many squares are there?');
    const c = cold.timings;
    const s = scratch.timings;
    const f = followUp.timings;
    const same = JSON.stringify(scratch.tokens) === JSON.stringify(cold.tokens);
    const ratio = s.timeToFirstTokenMs / f.timeToFirstTokenMs;

    console.log(`\ncold question over ${FRAMES} frames (${WIDTH}×${HEIGHT}), ${c.promptTokens} prompt tokens, ${c.generatedTokens} tokens generated`);
    console.log(`  preprocess                 ${fmt(c.preprocessMs)} ms (${fmt(c.preprocessMs / FRAMES)} ms per frame, CPU)`);
    console.log(`  vision encoder             ${fmt(c.visionMs / c.visionEncoded)} ms per frame (${c.visionEncoded} frames)`);
    console.log(`  prefill                    ${fmt(c.prefillTokensPerSecond)} tokens/s (${c.prefillTokens} tokens in ${fmt(c.prefillMs)} ms)`);
    console.log(`  time to first token        ${fmt(c.timeToFirstTokenMs)} ms`);
    console.log(`  decode                     ${fmt(c.decodeTokensPerSecond, 2)} tokens/s`);
    console.log(`the same question from scratch, features cached`);
    console.log(`  vision encoder runs        ${s.visionEncoded} of ${s.visualItems} frames (${s.visionCacheHits} from the feature cache); ${s.prefillTokens} tokens prefilled`);
    console.log(`  time to first token        ${fmt(s.timeToFirstTokenMs)} ms`);
    console.log(`  answer tokens identical to the cold answer   ${same ? 'yes' : 'no'} (${scratch.tokens.length} tokens)`);
    console.log(`follow-up question on the same frames`);
    console.log(`  vision encoder runs        ${f.visionEncoded} of ${f.visualItems} frames; ${f.prefixReusedTokens} prompt tokens kept, ${f.prefillTokens} prefilled`);
    console.log(`  time to first token        ${fmt(f.timeToFirstTokenMs)} ms`);
    console.log('');
    console.log(`  follow-up vs from-scratch (features cached) TTFT  ${fmt(ratio, 2)}  (target ≥ 5)`);
    printResult({
      name: 'browser',
      adapter,
      figures: {
        dtype: model.dtype,
        frames: FRAMES,
        promptTokens: c.promptTokens,
        coldTtftMs: c.timeToFirstTokenMs,
        scratchTtftMs: s.timeToFirstTokenMs,
        followUpTtftMs: f.timeToFirstTokenMs,
        followUpPromptTokens: f.promptTokens,
        followUpPrefilledTokens: f.prefillTokens,
        visionMsPerFrame: c.visionMs / c.visionEncoded,
        prefillTokensPerSecond: c.prefillTokensPerSecond,
        decodeTokensPerSecond: c.decodeTokensPerSecond,
        scratchTokensIdenticalToCold: same,
      },
      targets: [{ name: `follow-up vs from-scratch (features cached) TTFT (${FRAMES} frames)`, value: ratio, target: 5, op: '>=' }],
    });
  } finally {
    await bp.close();
  }
}

await main().catch((e) => {
  console.error(`bench:browser: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
