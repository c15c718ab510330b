// `npm run device-check`: the fp16-activation variant the app ships for GPUs with shader-f16 (q4f16)
// and the fp32-activation one (q4), on this machine's own GPU in Chromium (WebGPU over Vulkan/Metal/D3D;
// without a GPU Chromium falls back to SwiftShader, which has no shader-f16). One short run that
// prints the adapter, each variant's error against the fp32 reference on the weights it stores, along
// the reference's tokens (teacher forcing, image and video prompts), its prefill and decode tokens/s,
// and the fp16 guard on a checkpoint whose activations overflow fp16 (q4f16 only).
// Exit status: 0 all checked and within tolerance, 1 a mismatch, 2 q4f16 could not run here.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dtype } from '../src/molmo2/manifest.ts';
import { overflowingTensors } from '../src/molmo2/reference/testing.ts';
import { openBenchPage } from '../tools/bench-page.ts';
import { asStoredBy } from '../tools/lib/stored-weights.ts';
import { convertTestModel, ensureRuntimeModel, MODEL_URL, removeRuntimeModel, ROOT } from './runtime-model.ts';
import { maxAbsDiff, picture, RuntimeReference } from './runtime-reference.ts';
import { startHarness } from './runtime-page.ts';

/** Chromium flags that put WebGPU on the machine's GPU where there is one. */
const GPU_FLAGS = ['--ignore-gpu-blocklist', '--enable-features=Vulkan,UseSkiaRenderer', '--use-angle=vulkan', '--enable-gpu-rasterization'];
const OVERFLOW_NAME = 'device-check-overflow';
const OVERFLOW_DIR = join(ROOT, 'public', 'models', OVERFLOW_NAME);
const STEPS = 8;
/**
 * Relative to the largest |logit|: exact-weight arithmetic leaves fp32 rounding (q4, ~1e-4) or fp16
 * rounding plus int8 activations at accuracy level 4 on GPUs with DP4A (~1e-2).
 */
const TOLERANCE: Record<string, { relative: number; agreement: number }> = { q4: { relative: 2e-2, agreement: 0.75 }, q4f16: { relative: 5e-2, agreement: 0.75 } };

const prompts = [
  { question: 'Point to the red square.', visual: { kind: 'images' as const, images: [picture(72, 50, 3)] } },
  { question: 'Track the ball.', visual: { kind: 'video' as const, frames: [0, 0.5, 1].map((t, i) => ({ image: picture(64, 36, 30 + i), timestamp: t })) } },
];

async function main(): Promise<number> {
  console.log('building the test models (tiny random Molmo2; q4, q4f16, fp32) …');
  const model = await ensureRuntimeModel((m) => console.log(m));
  const overflowing = overflowingTensors(model.tensors);
  await convertTestModel(OVERFLOW_DIR, { ...model, tensors: overflowing, name: 'Molmo2 device check (fp16 overflow)', source: { repo: `molmo2-web/${OVERFLOW_NAME}`, revision: 'seed-5' } });

  const bp = await openBenchPage('e2e/runtime-harness.html', GPU_FLAGS);
  let failed = false;
  let q4f16Checked = false;
  try {
    const { page } = bp;
    const { caps, adapter } = await startHarness(page);
    console.log(`adapter: ${adapter}${caps.adapter?.description ? ` (${caps.adapter.description})` : ''}; shader-f16 ${caps.shaderF16 ? 'yes' : 'no'}; subgroups ${caps.subgroupSizes?.join('–') ?? 'no'}; maxBufferSize ${caps.maxBufferSize}, maxStorageBufferBindingSize ${caps.maxStorageBufferBindingSize}`);
    if (!caps.webgpu) throw new Error(caps.message ?? 'no WebGPU adapter');

    const runs: { dtype: Dtype; url: string; tensors: typeof model.tensors; what: string }[] = [
      { dtype: 'q4f16', url: MODEL_URL, tensors: model.tensors, what: 'test model' },
      { dtype: 'q4', url: MODEL_URL, tensors: model.tensors, what: 'test model' },
      { dtype: 'q4f16', url: `/models/${OVERFLOW_NAME}/`, tensors: overflowing, what: 'fp16-overflow checkpoint' },
    ];
    for (const run of runs) {
      if (run.dtype === 'q4f16' && !caps.shaderF16) {
        console.log(`${run.dtype} ${run.what}: NOT CHECKED (this adapter has no shader-f16)`);
        continue;
      }
      const reference = await RuntimeReference.create(model, asStoredBy(run.dtype, run.tensors, 'webgpu'));
      const loaded = await page.evaluate(([u, d]) => window.harness.load({ kind: 'url', url: u }, { dtype: d, cache: false }), [run.url, run.dtype] as const);
      for (const p of prompts) {
        const visual = p.visual.kind === 'images' ? { images: p.visual.images } : { frames: p.visual.frames };
        const want = reference.answer(p.question, visual, STEPS);
        const r = await page.evaluate(([q, v, o]) => window.harness.ask(q, v, o), [p.question, p.visual, { maxNewTokens: want.tokens.length, returnLogits: true, forceTokens: want.tokens }] as const);
        const got = r.done.logits ?? [];
        const scale = want.logits.reduce((m, l) => l.reduce((s, v) => Math.max(s, Math.abs(v)), m), 0);
        const finite = got.every((l) => l.every(Number.isFinite));
        const worst = Math.max(...want.logits.map((l, i) => (got[i] ? maxAbsDiff(got[i], l) : Infinity)));
        const agreement = r.done.tokens.filter((t, i) => t === want.tokens[i]).length / want.tokens.length;
        const tol = TOLERANCE[run.dtype];
        const ok = finite && got.length === want.logits.length && worst / scale < tol.relative && agreement >= tol.agreement;
        failed ||= !ok;
        if (run.dtype === 'q4f16' && ok) q4f16Checked = true;
        const t = r.done.timings;
        console.log(
          `${ok ? 'ok      ' : 'MISMATCH'} ${run.dtype} ${run.what}, ${p.visual.kind}: max |Δlogits| ${worst.toExponential(2)} (${(worst / scale).toExponential(2)} of max |logit|, limit ${tol.relative}), ` +
            `top-1 ${(agreement * 100).toFixed(0)}%${finite ? '' : ', NON-FINITE logits'}; prefill ${t.prefillTokensPerSecond.toFixed(1)} tok/s, decode ${t.decodeTokensPerSecond.toFixed(1)} tok/s, vision ${t.visionMs.toFixed(0)} ms (${loaded.model.dtype}/${loaded.model.target}, ${loaded.model.kvCache} KV cache)`,
        );
      }
    }
  } finally {
    await bp.close();
    await rm(OVERFLOW_DIR, { recursive: true, force: true });
    await removeRuntimeModel();
  }
  if (failed) return 1;
  return q4f16Checked ? 0 : 2;
}

main().then(
  (code) => {
    if (code === 2) console.log('q4f16 was not checked: run this on a machine whose GPU offers shader-f16.');
    process.exit(code);
  },
  (e) => {
    console.error(`device-check: ${(e as Error).stack ?? e}`);
    process.exit(1);
  },
);
