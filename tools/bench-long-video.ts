// `npm run bench:long-video [-- --sizes 2048,4096,8192,16384,32768] [--checkpoint tiny|medium]`: the GPU
// memory and time of one cold prefill as the prompt grows to the reference's video budget (384 frames
// ≈ 32k tokens), in headless Chromium (SwiftShader). The decoder with chunked prefill attention (512
// query rows, what the converter writes) is measured beside one mask for the whole prompt (the design
// before it), where that one still fits a 1 GiB buffer.
//   tiny    a 2-layer tiny-width decoder with 36864 positions, fp32: the memory target.
//   medium  make-tiny's medium widths (4 layers, 8 query heads of 128 over 2 KV heads, the real
//           vocabulary), q4: what the chunks' extra, smaller dispatches cost in time (default sizes
//           2048,4096). The prompt's text ids come from the test tokenizer; only their count matters here.
// Memory: GPU buffer bytes the run held at its peak beyond the weights and inputs (every createBuffer
// and destroy in the worker counted). Target: peak(largest) ÷ peak(smallest) ≤ 1.2 × the token ratio,
// i.e. linear in the prompt. SwiftShader's times are a count of work, not a user's speed.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseMolmo2Config } from '../src/molmo2/config.ts';
import { CheckedWeights } from '../src/molmo2/onnx/checked-weights.ts';
import { buildDecoder, PREFILL_CHUNK_TOKENS } from '../src/molmo2/onnx/decoder-webgpu.ts';
import { Graph } from '../src/molmo2/onnx/graph.ts';
import { precisionOf } from '../src/molmo2/onnx/layers.ts';
import { buildPrompt, type BuiltPrompt } from '../src/molmo2/prompt.ts';
import { molmo2ChatTemplate } from '../src/molmo2/reference/molmo2-4b-chat-template.ts';
import { randomTensors, tinyConfig, tinyConfigJson, tinyTokenizer } from '../src/molmo2/reference/testing.ts';
import { readAssetJson } from './lib/assets.ts';
import { scaledConfigJson } from './lib/tiny-checkpoint.ts';
import { openBenchPage, printResult, root } from './bench-page.ts';

const arg = (flag: string) => {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const CHECKPOINT = arg('--checkpoint') ?? 'tiny';
if (CHECKPOINT !== 'tiny' && CHECKPOINT !== 'medium') throw new Error(`--checkpoint is tiny or medium, got ${CHECKPOINT}`);
const SIZES = (arg('--sizes') ?? (CHECKPOINT === 'tiny' ? '2048,4096,8192,16384,32768' : '2048,4096')).split(',').map(Number);
const BINDING = 2 ** 30; // SwiftShader's maxBufferSize and maxStorageBufferBindingSize
const DTYPE = CHECKPOINT === 'tiny' ? 'fp32' : 'q4';
const WORK = join(root, '.cache', 'bench-long-video');

async function benchConfig() {
  if (CHECKPOINT === 'medium') {
    const check = parseMolmo2Config(await scaledConfigJson('medium'), await readAssetJson('generation_config.json'));
    if (!check.config) throw new Error(`medium config is invalid: ${[...check.missing, ...check.errors].join('; ')}`);
    return check.config;
  }
  const json = tinyConfigJson();
  Object.assign(json.text_config as Record<string, unknown>, { head_dim: 16, max_position_embeddings: 36864, num_hidden_layers: 2 });
  return tinyConfig(json);
}
const config = await benchConfig();
const t = config.text;
const nRep = t.numHeads / t.numKvHeads;
const tensors = randomTensors(config, 5);

/** The decoder built with `prefillChunk`, written where the bench page's server reads it; its URL. */
async function decoderUrl(prefillChunk: number): Promise<string> {
  const g = new Graph('decoder');
  await buildDecoder(g, new CheckedWeights(config, tensors), { precision: precisionOf(DTYPE), prefillChunk });
  await mkdir(WORK, { recursive: true });
  const file = join(WORK, `${CHECKPOINT}-${DTYPE}-chunk-${prefillChunk}.onnx`);
  await writeFile(file, g.toModelBytes());
  return `/@fs${file}`;
}

/** A video prompt of about `tokens` tokens: as many frames as fit, then a question. */
function promptOf(tokens: number): { prompt: BuiltPrompt; frames: number } {
  const make = (frames: number) =>
    buildPrompt({ tokenizer: tinyTokenizer, chatTemplate: molmo2ChatTemplate(), tokens: config.tokens, visual: { kind: 'video', timestamps: Array.from({ length: frames }, (_, i) => i * 0.5) }, conversation: { question: 'Track the dog.' } });
  const perFrame = make(2).inputIds.length - make(1).inputIds.length;
  const frames = Math.max(1, Math.round((tokens - make(1).inputIds.length) / perFrame) + 1);
  return { prompt: make(frames), frames };
}

const specOf = (p: BuiltPrompt) => ({ inputIds: Array.from(p.inputIds), tokenTypeIds: Array.from(p.tokenTypeIds), featureRows: p.imagePatchPositions.length, hidden: t.hiddenSize, layers: t.numLayers, kvHeads: t.numKvHeads, headDim: t.headDim });
const MiB = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

async function main(): Promise<void> {
  const bench = await openBenchPage('e2e/runtime-harness.html');
  try {
    await bench.page.waitForSelector('body[data-ready="true"]');
    const warm = specOf(promptOf(600).prompt);
    const prompts = SIZES.map((s) => promptOf(s));
    const designs = [
      { name: `chunks of ${PREFILL_CHUNK_TOKENS}`, chunk: PREFILL_CHUNK_TOKENS, fits: () => true },
      // One [n_rep·S, T] float32 mask (and a select of the same size) must fit one buffer.
      { name: 'one mask for the prompt', chunk: t.maxPositionEmbeddings, fits: (s: number) => 4 * nRep * s * s <= BINDING },
    ];
    const rows: { design: string; tokens: number; frames: number; runBytes?: number; ms?: number; note?: string }[] = [];
    let adapter = '';
    const createMs: Record<string, number> = {};
    for (const d of designs) {
      const model = await decoderUrl(d.chunk);
      const run = prompts.filter((p) => d.fits(p.prompt.inputIds.length));
      for (const p of prompts.filter((q) => !d.fits(q.prompt.inputIds.length))) rows.push({ design: d.name, tokens: p.prompt.inputIds.length, frames: p.frames, note: `does not fit: its mask is ${MiB(4 * nRep * p.prompt.inputIds.length ** 2)} > a 1 GiB buffer` });
      // One page call per prompt (a warm-up prefill first, in the same session, compiles the kernels).
      for (const p of run) {
        const r = await bench.page.evaluate(([m, specs]) => window.harness.prefillRuns(m, specs), [model, [warm, specOf(p.prompt)]] as const);
        adapter = JSON.stringify(r.adapter);
        if (!createMs[d.name]) createMs[d.name] = r.createMs;
        const x = r.results[1];
        rows.push({ design: d.name, tokens: x.tokens, frames: p.frames, runBytes: x.error ? undefined : x.runBytes, ms: x.ms, note: x.error });
        console.log(`${d.name}: S = ${x.tokens} (${p.frames} frames): ${x.error ? `failed: ${x.error}` : `${MiB(x.runBytes)}, ${(x.ms / 1000).toFixed(1)} s`}`);
      }
    }
    const chunked = rows.filter((r) => r.design === designs[0].name && r.runBytes !== undefined);
    const [first, last] = [chunked[0], chunked[chunked.length - 1]];
    const tokenRatio = last.tokens / first.tokens;
    const memoryRatio = last.runBytes! / first.runBytes!;
    const table = [
      '| design | prompt tokens | frames | GPU memory of the prefill | time (SwiftShader) |',
      '|---|---|---|---|---|',
      ...rows.map((r) => `| ${r.design} | ${r.tokens} | ${r.frames} | ${r.runBytes !== undefined ? MiB(r.runBytes) : '—'} | ${r.ms !== undefined && !r.note ? `${(r.ms / 1000).toFixed(1)} s` : (r.note ?? '—')} |`),
    ].join('\n');
    console.log(`\n${table}\n`);
    console.log(`${CHECKPOINT} checkpoint (${t.numLayers} layers, ${DTYPE}); adapter ${adapter}`);
    for (const d of designs) if (createMs[d.name]) console.log(`  session creation, ${d.name}: ${(createMs[d.name] / 1000).toFixed(1)} s`);
    for (const r of chunked) {
      const one = rows.find((x) => x.design === designs[1].name && x.tokens === r.tokens && x.ms !== undefined && !x.note);
      if (one) console.log(`  prefill time, chunks ÷ one mask at ${r.tokens} tokens  ${(r.ms! / one.ms!).toFixed(2)}`);
    }
    console.log(`  prefill memory growth ÷ token growth (chunks, ${first.tokens} → ${last.tokens} tokens)  ${(memoryRatio / tokenRatio).toFixed(2)}  (target ≤ 1.2)`);
    printResult({ checkpoint: CHECKPOINT, dtype: DTYPE, adapter, createMs, sizes: SIZES, rows, memoryRatio, tokenRatio, markdown: table });
  } finally {
    await bench.close();
  }
}

await main();
