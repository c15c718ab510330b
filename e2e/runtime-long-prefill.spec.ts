// A long prompt prefilled on WebGPU (SwiftShader) in query chunks: a ~4k-token video prompt on a tiny
// checkpoint through the static-cache decoder graph with 512-row chunks (boundaries inside image
// blocks and inside the text) gives the reference's logits, equals the one-chunk graph, and takes less
// GPU memory than the prompt's S×T mask alone would.
import { expect, test } from '@playwright/test';
import { CheckedWeights } from '../src/molmo2/onnx/checked-weights.ts';
import { buildDecoder } from '../src/molmo2/onnx/decoder-webgpu.ts';
import { Graph } from '../src/molmo2/onnx/graph.ts';
import { precisionOf } from '../src/molmo2/onnx/layers.ts';
import { buildPrompt } from '../src/molmo2/prompt.ts';
import { ReferenceModel } from '../src/molmo2/reference/index.ts';
import { molmo2ChatTemplate } from '../src/molmo2/reference/molmo2-4b-chat-template.ts';
import { randomTensors, tinyConfig, tinyConfigJson, tinyTokenizer } from '../src/molmo2/reference/testing.ts';
import { maxAbsDiff } from './runtime-reference.ts';

const json = tinyConfigJson();
(json.text_config as Record<string, unknown>).head_dim = 16; // GroupQueryAttention: head_dim % 8 = 0
const config = tinyConfig(json);
const t = config.text;

async function decoderBytes(prefillChunk: number): Promise<number[]> {
  const g = new Graph('decoder');
  await buildDecoder(g, new CheckedWeights(config, randomTensors(config, 11)), { precision: precisionOf('fp32'), prefillChunk });
  return Array.from(g.toModelBytes());
}

test('a ~4k-token video prompt prefilled in 512-row chunks on WebGPU gives the reference logits in less memory than one S×T mask', async ({ page }) => {
  test.setTimeout(300_000);
  const prompt = buildPrompt({
    tokenizer: tinyTokenizer,
    chatTemplate: molmo2ChatTemplate(),
    tokens: config.tokens,
    visual: { kind: 'video', timestamps: Array.from({ length: 40 }, (_, i) => i * 0.5) },
    conversation: { question: `Track the dog${' and the cat'.repeat(40)}.` },
  });
  const ids = Array.from(prompt.inputIds);
  const types = Array.from(prompt.tokenTypeIds);
  const S = ids.length;
  const boundaries = Array.from({ length: Math.floor((S - 1) / 512) }, (_, k) => (k + 1) * 512);
  expect(boundaries.some((b) => types[b - 1] === 1 && types[b] === 1)).toBe(true);
  expect(boundaries.some((b) => types[b - 1] === 0 && types[b] === 0)).toBe(true);
  const spec = { inputIds: ids, tokenTypeIds: types, featureRows: prompt.imagePatchPositions.length, hidden: t.hiddenSize, layers: t.numLayers, kvHeads: t.numKvHeads, headDim: t.headDim };
  const rows = Float32Array.from({ length: spec.featureRows * t.hiddenSize }, (_, i) => Math.sin(i * 0.013) * 0.8);
  const reference = (await ReferenceModel.load(config, randomTensors(config, 11))).prefill(ids, rows, prompt.tokenTypeIds).logits;

  await page.goto('/e2e/runtime-harness.html');
  await expect(page.locator('body')).toHaveAttribute('data-ready', 'true');
  const run = async (chunk: number) => {
    const r = await page.evaluate(([m, s]) => window.harness.prefillRuns(m, [s]), [await decoderBytes(chunk), spec] as const);
    expect(r.results[0].error).toBeUndefined();
    return { ...r.results[0], adapter: r.adapter };
  };
  const chunked = await run(512);
  const whole = await run(t.maxPositionEmbeddings);
  const maskBytes = S * S * 4;
  const figures = `S = ${S}: chunks of 512 ${(chunked.runBytes / 2 ** 20).toFixed(1)} MiB, ${chunked.ms.toFixed(0)} ms; one chunk ${(whole.runBytes / 2 ** 20).toFixed(1)} MiB, ${whole.ms.toFixed(0)} ms; one S×T float32 mask ${(maskBytes / 2 ** 20).toFixed(1)} MiB (${JSON.stringify(chunked.adapter)})`;
  console.log(`long prefill on WebGPU: ${figures}`);
  test.info().annotations.push({ type: 'long prefill', description: figures });

  expect(maxAbsDiff(chunked.logits, reference)).toBeLessThan(2e-4);
  expect(maxAbsDiff(chunked.logits, whole.logits)).toBeLessThan(1e-4);
  expect(chunked.logits.indexOf(Math.max(...chunked.logits))).toBe(reference.indexOf(Math.max(...reference)));
  // The one-chunk graph holds the whole mask (and its per-KV-group copy); the chunked one never holds
  // even one S×T float32 buffer.
  expect(whole.runBytes).toBeGreaterThan(maskBytes);
  expect(chunked.runBytes).toBeLessThan(maskBytes);
  expect(chunked.runBytes).toBeLessThan(whole.runBytes / 4);
});
