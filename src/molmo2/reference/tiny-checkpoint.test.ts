// The reference on an on-disk tiny checkpoint in the published layout: sharded safetensors read by
// the converter's reader, full Qwen3 vocabulary, 25 ViT blocks, the checkpoint's own tokenizer.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpointFolder, SafetensorsCheckpoint } from '../../../tools/lib/checkpoint.ts';
import { makeTinyCheckpoint, type TinyCheckpoint } from '../../../tools/lib/tiny-checkpoint.ts';
import { parseProcessorSettings } from '../config.ts';
import { imagePixelValues, planImage, videoFramePixelValues } from '../image.ts';
import { buildPrompt } from '../prompt.ts';
import { Molmo2Tokenizer } from '../tokenizer.ts';
import { MolmoPointReference, ReferenceModel } from './index.ts';
import { molmo2ChatTemplate } from './molmo2-4b-chat-template.ts';

let dir: string;
let ckpt: TinyCheckpoint;
let reader: SafetensorsCheckpoint;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'molmo2-ref-'));
  ckpt = await makeTinyCheckpoint({ outDir: dir, seed: 3 });
  reader = await SafetensorsCheckpoint.open(await readCheckpointFolder(dir));
});

afterAll(async () => {
  await reader?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('MolmoPoint reference on its tiny published-layout checkpoint', () => {
  it('answers an image prompt (global view as <im_low>) under the point rules, over the full generated vocabulary, and decodes the text', async () => {
    const pointDir = await mkdtemp(join(tmpdir(), 'molmopoint-ref-'));
    // The demo size's 4-block ViT keeps this affordable (an image is at least two crops).
    const ck = await makeTinyCheckpoint({ outDir: pointDir, seed: 3, family: 'molmopoint', size: 'demo' });
    const source = await SafetensorsCheckpoint.open(await readCheckpointFolder(pointDir));
    try {
      const config = ck.config;
      const model = await MolmoPointReference.load(config, source);
      const tok = new Molmo2Tokenizer(JSON.parse(await readFile(join(pointDir, 'tokenizer.json'), 'utf8')), JSON.parse(await readFile(join(pointDir, 'tokenizer_config.json'), 'utf8')));
      const settings = parseProcessorSettings({ processor: JSON.parse(await readFile(join(pointDir, 'processor_config.json'), 'utf8')) });
      const plan = planImage(64, 48);
      const prompt = buildPrompt({ tokenizer: tok, chatTemplate: molmo2ChatTemplate(), tokens: config.tokens, visual: { kind: 'images', plans: [plan] }, conversation: { question: 'Point to the cup.' }, settings });
      expect(prompt.inputIds.filter((id) => id === config.point!.nonIndexablePatchId).length).toBe(plan.globalGrid[0] * plan.globalGrid[1]);
      const rgb = Uint8Array.from({ length: 64 * 48 * 3 }, (_, i) => (i * 31) & 255);
      const images = model.encodeImages(imagePixelValues(rgb, 64, 48), prompt.numCrops, prompt.pooledIdx, prompt.poolSize);
      const g = model.generateGreedy({ inputIds: prompt.inputIds, tokenTypeIds: prompt.tokenTypeIds, images, maxNewTokens: 3 });
      const b = g.session.bounds;
      expect(b.patchStart).toBe(151936 + 128);
      expect(g.stepLogits[0].length).toBe(b.locationEnd);
      expect(g.stepLogits[0].every((v) => !Number.isNaN(v))).toBe(true);
      expect(typeof tok.decode(g.tokens)).toBe('string');
    } finally {
      await source.close();
      await rm(pointDir, { recursive: true, force: true });
    }
  });
});

describe('reference on a tiny published-layout checkpoint', () => {
  it('runs a one-frame video prompt end to end and decodes the generated text', async () => {
    const config = ckpt.config;
    expect(config.vitBlocksUsed).toBe(25);
    const model = await ReferenceModel.load(config, reader);
    const tok = new Molmo2Tokenizer(JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8')), JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8')));

    const prompt = buildPrompt({ tokenizer: tok, chatTemplate: molmo2ChatTemplate(), tokens: config.tokens, visual: { kind: 'video', timestamps: [0] }, conversation: { question: 'Point to the cup.' } });
    const rgb = Uint8Array.from({ length: 64 * 48 * 3 }, (_, i) => (i * 31) & 255);
    const features = model.visionFeatures(videoFramePixelValues(rgb, 64, 48), 1, prompt.pooledIdx, prompt.poolSize);
    expect(features.length).toBe(81 * config.text.hiddenSize);
    expect(features.every(Number.isFinite)).toBe(true);

    const g = model.generateGreedy({ inputIds: prompt.inputIds, imageFeatures: features, tokenTypeIds: prompt.tokenTypeIds, maxNewTokens: 3 });
    expect(g.stepLogits[0].length).toBe(config.text.vocabSize);
    expect(g.tokens.every((t) => t >= 0 && t < config.text.vocabSize)).toBe(true);
    expect(typeof tok.decode(g.tokens)).toBe('string');
  });
});
