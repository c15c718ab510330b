// `npm run bench:dispatch [-- --sizes tiny,bench] [--rebuild]`: the work one decode step asks of the
// GPU, counted in headless Chromium (SwiftShader WebGPU) through the app's inference worker with the
// WebGPU calls wrapped (src/runtime/gpu-counters.ts): compute dispatches (per kernel), buffer uploads,
// copies, read-backs and queue submissions, plus the decoder graph's ONNX nodes per layer and the bytes
// a step reads against the weights' size.
//
// Per layer and fixed parts are measured, not estimated: each width is converted at two decoder depths
// (L and L+1 layers, same seed, q4, WebGPU target), and one decode step is the difference between a
// question answered with 2 tokens and the same question with 1 token. The per-layer count is the
// difference between the depths. Beside it: the anchor design's kernels per layer (onnxruntime-genai's
// Qwen3 graph), with GroupQueryAttention's own kernels as measured here.
//
// Dispatch counts do not depend on the GPU; SwiftShader's times here count work, not a user's speed.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import type { GraphFiles, Manifest } from '../src/molmo2/manifest.ts';
import { countsBetween, type GpuCounts } from '../src/runtime/gpu-counters.ts';
import { readAssetJson } from './lib/assets.ts';
import { convertCheckpoint } from './lib/converter.ts';
import { makeTinyCheckpoint, WIDTHS, type TinySize } from './lib/tiny-checkpoint.ts';
import { openBenchPage, printResult, root } from './bench-page.ts';
import { startHarness } from '../e2e/runtime-page.ts';

const { onnx } = onnxProto;
const option = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const SIZES = option('sizes', 'tiny,bench').split(',') as TinySize[];
const WORK = join(root, '.cache', 'bench-dispatch');
const QUESTION = 'Describe the scene.';

/**
 * The anchor design's kernels per decoder layer for one decode step: onnxruntime-genai's Qwen3 graph
 * on onnxruntime's WebGPU EP. GroupQueryAttention's kernels are taken from this run (the same op).
 */
const ANCHOR_LAYER = [
  ['SimplifiedLayerNorm / SkipSimplifiedLayerNorm (input, post-attention)', 2],
  ['MatMulNBits (qkv, o, gate-up, down)', 4],
  ['SimplifiedLayerNorm (q_norm, k_norm)', 2],
  ['SiLU · mul (QuickGelu, Mul)', 2],
] as const;
const GQA_KERNELS = /CopyKVCache|FlashAttention|Rotary|GroupQueryAttention|Attention/;

const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const MB = (b: number) => `${(b / 1e6).toFixed(1)} MB`;

/** A random checkpoint of these widths with `layers` decoder layers, converted to q4 (WebGPU target). */
async function model(size: TinySize, layers: number): Promise<{ dir: string; url: string; decoder: GraphFiles }> {
  const dir = join(WORK, `${size}-${layers}`);
  if (process.argv.includes('--rebuild')) await rm(dir, { recursive: true, force: true });
  if (!existsSync(join(dir, 'model', 'manifest.json'))) {
    console.log(`converting ${size} widths with ${layers} decoder layers (q4, webgpu) …`);
    await makeTinyCheckpoint({ outDir: join(dir, 'checkpoint'), seed: 3, size, textLayers: layers });
    await convertCheckpoint({
      source: join(dir, 'checkpoint'),
      out: join(dir, 'model'),
      dtypes: ['q4'],
      targets: ['webgpu'],
      name: `dispatch bench (${size} widths, ${layers} layers)`,
      sourceLabel: { repo: `molmo2-web/dispatch-${size}`, revision: `layers-${layers}` },
    });
    await rm(join(dir, 'checkpoint'), { recursive: true, force: true });
  }
  const manifest = JSON.parse(readFileSync(join(dir, 'model', 'manifest.json'), 'utf8')) as Manifest;
  const { decoder } = manifest.variants.find((v) => v.dtype === 'q4' && v.target === 'webgpu')!;
  return { dir: join(dir, 'model'), url: `/@fs${join(dir, 'model')}/`, decoder };
}

type NodeProto = OnnxTypes.INodeProto;

/**
 * The decoder's nodes a decode step runs in layer 1 (layer 0 has no residual to add before its first
 * norm), the If's decode branch and not its prefill branch, by op.
 */
function layerNodes(graphFile: string): Record<string, number> {
  const graph = onnx.ModelProto.decode(readFileSync(graphFile)).graph!;
  const ops: Record<string, number> = {};
  const visit = (nodes: NodeProto[]) => {
    for (const n of nodes) {
      if (!n.name?.startsWith('/model/layers.1/') || n.name.includes('/prefill/')) continue;
      if (n.opType !== 'If') ops[n.opType!] = (ops[n.opType!] ?? 0) + 1;
      for (const a of n.attribute ?? []) if (a.name === 'else_branch' && a.g?.node) visit(a.g.node);
    }
  };
  visit(graph.node ?? []);
  return ops;
}

/** Bytes a decode step reads at least: every weight once, except the embedding table (one row). */
function weightBytes(files: GraphFiles, dir: string): { decoder: number; perStep: number } {
  const decoder = files.externalData.reduce((s, p) => s + statSync(join(dir, p)).size, 0);
  const graph = onnx.ModelProto.decode(readFileSync(join(dir, files.model))).graph!;
  let table = 0;
  for (const t of graph.initializer ?? []) {
    if (!t.name?.startsWith('model.transformer.wte')) continue;
    const length = t.externalData?.find((e) => e.key === 'length')?.value;
    table += Number(length ?? 0);
  }
  return { decoder, perStep: decoder - table };
}

interface StepFigures {
  counts: GpuCounts;
  decodeMs: number;
  /** What onnxruntime says to a decoder session with graph capture on. */
  graphCapture: string;
  /** The decoder nodes onnxruntime placed on the CPU (small int64 index math). */
  cpuNodes: string[];
}

/**
 * Asks onnxruntime for the decoder with graph capture (`enableGraphCapture`), in the page, and returns
 * its own answer: onnxruntime refuses capture for a graph with control flow, and this decoder keeps
 * Molmo2's prefill mask exact with an If per layer.
 */
async function graphCaptureProbe(page: import('playwright-core').Page, url: string, graph: string, externalData: string[]): Promise<string> {
  const said: string[] = [];
  const listen = (m: { text(): string }) => /capture/i.test(m.text()) && !/Session Options/.test(m.text()) && said.push(m.text().replace(/\s+/g, ' ').slice(0, 200));
  page.on('console', listen);
  const outcome = await page.evaluate(
    async ([base, file, data]) => {
      const { setupOrt, webgpuSessionOptions } = (await import(String('/src/runtime/ort.ts'))) as typeof import('../src/runtime/ort.ts');
      const ort = await setupOrt();
      // No named function here: the page has no bundler helpers for them.
      // The graph names its external data relative to itself.
      const folder = file.slice(0, file.lastIndexOf('/') + 1);
      const externalData = await Promise.all(data.map(async (path) => ({ path: path.slice(folder.length), data: new Uint8Array(await (await fetch(base + path)).arrayBuffer()) })));
      const graphBytes = new Uint8Array(await (await fetch(base + file)).arrayBuffer());
      try {
        // onnxruntime-web hands enableGraphCapture to the WebGPU EP only when the EP is given as an
        // object: with the string 'webgpu' the setting is dropped without a word.
        const options = webgpuSessionOptions({ externalData, logSeverityLevel: 1, extra: { session: { disable_cpu_ep_fallback: '0' } } });
        const session = await ort.InferenceSession.create(graphBytes, { ...options, executionProviders: [{ name: 'webgpu' }], enableGraphCapture: true });
        await session.release();
        return 'session created with graph capture on';
      } catch (e) {
        return `refused: ${String(e instanceof Error ? e.message : e).replace(/\s+/g, ' ').slice(0, 300)}`;
      }
    },
    [url, graph, externalData] as const,
  );
  page.off('console', listen);
  return said.length && !outcome.startsWith('refused') ? `${outcome}; onnxruntime: ${said.join(' | ')}` : outcome;
}

/** One decode step of a converted folder: (2-token answer) − (1-token answer), in a fresh page. */
async function decodeStep(url: string, decoder: GraphFiles): Promise<StepFigures> {
  const bp = await openBenchPage('e2e/runtime-harness.html');
  try {
    const { page } = bp;
    page.on('crash', () => console.error('[page] the page crashed'));
    await startHarness(page);
    await page.evaluate(() => window.harness.countGpuWork());
    const { model: loaded } = await page.evaluate((u) => window.harness.load({ kind: 'url', url: u }, { dtype: 'q4', maxContext: 512 }), url);
    const cpuNodes = loaded.placement.find((p) => p.graph.includes('decoder'))?.cpuNodes.map((n) => `${n.op} ${n.name}`) ?? [];
    const ask = (n: number) => page.evaluate(([q, tokens]) => window.harness.ask(q, { kind: 'none' }, { maxNewTokens: tokens }), [QUESTION, n] as const);
    await ask(1); // first run: pipelines compiled, buffers pooled
    await page.evaluate(() => window.harness.takeGpuCounts());
    await ask(1);
    const one = await page.evaluate(() => window.harness.takeGpuCounts());
    const two = await ask(2);
    const counts = countsBetween(one, await page.evaluate(() => window.harness.takeGpuCounts()));
    if (two.done.timings.generatedTokens !== 2) throw new Error(`the 2-token answer stopped after ${two.done.timings.generatedTokens} token(s)`);
    const graphCapture = await graphCaptureProbe(page, url, decoder.model, decoder.externalData);
    return { counts, decodeMs: two.done.timings.decodeMs, graphCapture, cpuNodes };
  } finally {
    await bp.close();
  }
}

function kernelLine(byKernel: Record<string, number>, scale = 1): string {
  return Object.entries(byKernel)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${fmt(n / scale, Number.isInteger(n / scale) ? 0 : 1)}`)
    .join(', ');
}

async function main() {
  const results: Record<string, unknown> = {};
  for (const size of SIZES) {
    const base = WIDTHS[size].text.layers;
    const depths = [base, base + 1];
    const models = [];
    for (const layers of depths) models.push({ layers, ...(await model(size, layers)) });
    const steps: StepFigures[] = [];
    for (const m of models) {
      console.log(`measuring one decode step: ${size} widths, ${m.layers} layers …`);
      steps.push(await decodeStep(m.url, m.decoder));
    }
    const [shallow, deep] = steps;
    const perLayer = countsBetween(shallow.counts, deep.counts);
    const fixed = countsBetween(scaled(perLayer, base), shallow.counts);
    const w = WIDTHS[size].text;
    const nodes = layerNodes(join(models[0].dir, models[0].decoder.model));
    const nodeCount = Object.values(nodes).reduce((a, b) => a + b, 0);
    const gqa = Object.entries(perLayer.byKernel).filter(([k]) => GQA_KERNELS.test(k)).reduce((a, [, n]) => a + n, 0);
    const anchor = ANCHOR_LAYER.reduce((a, [, n]) => a + n, 0) + gqa;
    const bytes = weightBytes(models[0].decoder, models[0].dir);
    const s = shallow.counts;

    console.log(`\n${size} widths (hidden ${w.hidden}, ${w.heads} heads, ${w.kvHeads} KV heads, head_dim ${w.headDim}, MLP ${w.intermediate}), q4, one decode step:`);
    console.log(`  at ${base} layers: ${s.dispatches} dispatches, ${s.uploads} uploads (${s.uploadBytes} B), ${s.copies} copies (${s.copyBytes} B), ${s.downloads} read-backs (${s.downloadBytes} B), ${s.submits} submits, ${s.buffersCreated} buffers created; ${fmt(shallow.decodeMs / 1000)} s on SwiftShader`);
    console.log(`  per layer (${base + 1} − ${base} layers): ${perLayer.dispatches} dispatches — ${kernelLine(perLayer.byKernel)}`);
    console.log(`  outside the layers: ${fixed.dispatches} dispatches — ${kernelLine(fixed.byKernel)} (layer 0 normalises its input without a residual to add: one SkipLayerNorm is a LayerNorm there)`);
    if (size === 'bench') {
      const depth = Number((((await readAssetJson('config.json')).text_config as Record<string, unknown>).num_hidden_layers));
      console.log(`  at Molmo2-4B's ${depth} layers: ${fixed.dispatches + depth * perLayer.dispatches} dispatches a step (the two measured depths extended: ${fixed.dispatches} + ${depth} × ${perLayer.dispatches})`);
    }
    console.log(`  anchor (onnxruntime-genai Qwen3) per layer: ${anchor} kernels = ${ANCHOR_LAYER.map(([n, c]) => `${c} ${n}`).join(' + ')} + ${gqa} GroupQueryAttention (as measured)`);
    console.log(`  decode-step kernels per layer ÷ anchor (${size})  ${fmt(perLayer.dispatches / anchor, 2)}  (target ≤ 1.2)`);
    console.log(`  read-backs per decode step (${size})  ${s.downloads}  (target ≤ 1: the next token)`);
    console.log(`  ONNX nodes per layer on the decode path: ${nodeCount} — ${kernelLine(nodes)}`);
    console.log(`  decoder nodes onnxruntime placed on the CPU: ${shallow.cpuNodes.length ? shallow.cpuNodes.join(', ') : 'none'}`);
    console.log(`  graph capture (enableGraphCapture) for this decoder: ${shallow.graphCapture}`);
    console.log(`  bytes read per token ≥ ${MB(bytes.perStep)} of ${MB(bytes.decoder)} decoder weights (every weight but the embedding table's other rows)`);
    results[size] = {
      layers: base,
      stepDispatches: s.dispatches,
      perLayerDispatches: perLayer.dispatches,
      fixedDispatches: fixed.dispatches,
      anchorPerLayer: anchor,
      ratioToAnchor: perLayer.dispatches / anchor,
      uploads: s.uploads,
      copies: s.copies,
      downloads: s.downloads,
      submits: s.submits,
      nodesPerLayer: nodeCount,
      bytesPerStep: bytes.perStep,
      decoderBytes: bytes.decoder,
      decodeMsSwiftShader: shallow.decodeMs,
      graphCapture: shallow.graphCapture,
    };
  }
  printResult({ name: 'dispatch', figures: results });
}

/** Every count of c times k. */
function scaled(c: GpuCounts, k: number): GpuCounts {
  const out = { ...c, byKernel: Object.fromEntries(Object.entries(c.byKernel).map(([name, n]) => [name, n * k])) };
  for (const key of Object.keys(c) as (keyof GpuCounts)[]) if (key !== 'byKernel') (out[key] as number) = (c[key] as number) * k;
  return out;
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
