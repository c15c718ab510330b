// `npm run bench:quant-webgpu`: the q4 variant (int4 decoder, int8 vision encoder) on onnxruntime-web's
// WebGPU EP — this machine's adapter in headless Chromium, SwiftShader without a GPU — converted at
// MatMulNBits accuracy_level 0 and at 4 (decoder and vision encoder alike), against the fp32 reference
// running on the weights q4 stores (tools/lib/stored-weights.ts), along the reference's tokens
// (teacher forcing through the harness's forceTokens): max |Δlogits|, relative to the largest logit,
// top-1 agreement, and decode ms per token. Checkpoints: tiny (the browser tests' model; a three-frame
// video and two images) and medium (make-tiny's medium widths; a one-frame video, because the JS
// reference takes about a minute per crop at those widths and SwiftShader's vision encoder two).
// Its markdown table goes into bench/REPORT.md (`npm run bench -- --only quant-webgpu`).
import { rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseMolmo2Config } from '../src/molmo2/config.ts';
import { randomTensors } from '../src/molmo2/reference/testing.ts';
import { convertTestModel, runtimeModelParts, type RuntimeModel } from '../e2e/runtime-model.ts';
import { maxAbsDiff, picture, RuntimeReference, type PlainImage } from '../e2e/runtime-reference.ts';
import { openBenchPage, printResult, root } from './bench-page.ts';
import { startHarness } from '../e2e/runtime-page.ts';
import { readAssetJson } from './lib/assets.ts';
import { asStoredBy } from './lib/stored-weights.ts';
import { buildTokenizerJson, scaledConfigJson } from './lib/tiny-checkpoint.ts';

const WORK = join(root, '.cache', 'bench-quant-webgpu');
const LEVELS = [0, 4];

type Visual = { kind: 'images'; images: PlainImage[] } | { kind: 'video'; frames: { image: PlainImage; timestamp: number }[] };
interface Prompt {
  name: string;
  question: string;
  visual: Visual;
}
interface Size {
  name: 'tiny' | 'medium';
  parts: RuntimeModel & { json: Record<string, unknown> };
  prompts: Prompt[];
  steps: number;
}

const video = (n: number, seed: number): Visual => ({ kind: 'video', frames: Array.from({ length: n }, (_, i) => ({ image: picture(64, 36, seed + i), timestamp: i / 2 })) });

async function sizes(): Promise<Size[]> {
  const tiny = await runtimeModelParts();
  const json = await scaledConfigJson('medium');
  const check = parseMolmo2Config(json, await readAssetJson('generation_config.json'));
  if (!check.config) throw new Error(`medium config is invalid: ${[...check.missing, ...check.errors].join('; ')}`);
  const medium = { json, config: check.config, tensors: randomTensors(check.config, 1), tokenizerJson: await buildTokenizerJson(), tokenizerConfig: await readAssetJson('tokenizer_config.json') };
  return [
    {
      name: 'tiny',
      parts: tiny,
      steps: 8,
      prompts: [
        { name: 'video (3 frames)', question: 'Track the ball.', visual: video(3, 30) },
        { name: 'two images', question: 'Point to the red square.', visual: { kind: 'images', images: [picture(72, 50, 3), picture(50, 64, 4)] } },
      ],
    },
    { name: 'medium', parts: medium, steps: 6, prompts: [{ name: 'video (1 frame)', question: 'Track the ball.', visual: video(1, 40) }] },
  ];
}

const e2 = (x: number) => x.toExponential(2);

async function main(): Promise<void> {
  const started = performance.now();
  const load0 = loadavg()[0];
  const rows: { checkpoint: string; level: number; prompt: string; abs: number; rel: number; top1: number; decodeMs: number }[] = [];
  const bp = await openBenchPage('e2e/runtime-harness.html');
  let adapter = 'none';
  try {
    const { page } = bp;
    ({ adapter } = await startHarness(page));
    console.log(`adapter: ${adapter}`);
    for (const size of await sizes()) {
      const dirs = LEVELS.map((level) => join(WORK, `${size.name}-level${level}`));
      for (const [i, level] of LEVELS.entries()) {
        console.log(`${size.name}: converting q4 at accuracy_level ${level} …`);
        await convertTestModel(dirs[i], {
          ...size.parts,
          name: `Molmo2 ${size.name} (random weights), q4 at accuracy_level ${level}`,
          source: { repo: `molmo2-web/bench-quant-webgpu-${size.name}`, revision: `level-${level}` },
          convert: { dtypes: ['q4'], targets: ['webgpu'], q4: { accuracyLevel: level, visionAccuracyLevel: level } },
        });
      }
      // Both levels store the same weights: one reference answer per prompt serves both.
      const reference = await RuntimeReference.create(size.parts, asStoredBy('q4', size.parts.tensors, 'webgpu'), dirs[0]);
      const wants = size.prompts.map((p) => {
        console.log(`${size.name}: the reference on the stored weights, ${p.name} …`);
        return reference.answer(p.question, p.visual.kind === 'images' ? { images: p.visual.images } : { frames: p.visual.frames }, size.steps);
      });
      for (const [i, level] of LEVELS.entries()) {
        const url = `/@fs${dirs[i]}/`;
        const { model } = await page.evaluate((u) => window.harness.load({ kind: 'url', url: u }, { cache: false, warmUp: false, dtype: 'q4' }), url);
        if (model.kvCache !== 'static') console.log(`note: ${size.name} loaded with a ${model.kvCache} KV cache`);
        for (const [k, p] of size.prompts.entries()) {
          const want = wants[k];
          const r = await page.evaluate(([q, v, o]) => window.harness.ask(q, v, o), [p.question, p.visual, { maxNewTokens: want.tokens.length, returnLogits: true, forceTokens: want.tokens }] as const);
          const got = r.done.logits ?? [];
          const scale = want.logits.reduce((m, l) => l.reduce((s, v) => Math.max(s, Math.abs(v)), m), 0);
          const abs = Math.max(...want.logits.map((l, j) => (got[j] ? maxAbsDiff(got[j], l) : Infinity)));
          const top1 = r.done.tokens.filter((t, j) => t === want.tokens[j]).length / want.tokens.length;
          const decodeMs = r.done.timings.decodeTokensPerSecond > 0 ? 1000 / r.done.timings.decodeTokensPerSecond : NaN;
          rows.push({ checkpoint: size.name, level, prompt: p.name, abs, rel: abs / scale, top1, decodeMs });
          console.log(`${size.name} level ${level} ${p.name}: max |Δlogits| ${e2(abs)} (${e2(abs / scale)} of max |logit|), top-1 ${(top1 * 100).toFixed(0)}%, decode ${decodeMs.toFixed(0)} ms/token`);
        }
        await page.evaluate(() => window.harness.unload());
      }
      for (const d of dirs) await rm(d, { recursive: true, force: true });
    }
  } finally {
    await bp.close();
  }
  const table = [
    '| checkpoint | accuracy_level | prompt | max \\|Δ\\| vs own weights | rel | top-1 | decode ms/token |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.checkpoint} | ${r.level} | ${r.prompt} | ${e2(r.abs)} | ${e2(r.rel)} | ${(r.top1 * 100).toFixed(0)}% | ${Number.isFinite(r.decodeMs) ? r.decodeMs.toFixed(0) : 'n/a'} |`),
  ];
  const text = [
    `q4 on WebGPU (${adapter}), converted at MatMulNBits accuracy_level 0 and 4, against the reference on the weights q4 stores along its tokens (teacher forcing). rel = max |Δ| ÷ max |reference logit|.`,
    '',
    ...table,
    '',
    '- On SwiftShader the two levels compute the same: its WebGPU kernels do not take the int8-activation (DP4A) path, so level 4 costs nothing here; on GPUs where they do, the CPU figures of the `quant` section are the guide. Decode times on SwiftShader count work, not a user\'s speed.',
    `- run time ${((performance.now() - started) / 1000).toFixed(0)} s; load average ${load0.toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at the end`,
  ].join('\n');
  console.log(`\n${text}`);
  printResult({ name: 'quant-webgpu', adapter, figures: { markdown: text, rows } });
}

await main().catch((e) => {
  console.error(`bench:quant-webgpu: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
