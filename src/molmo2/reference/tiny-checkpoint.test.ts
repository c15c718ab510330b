// The reference on an on-disk tiny checkpoint in the published layout: sharded safetensors read by
// the converter's reader, full Qwen3 vocabulary, 25 ViT blocks, the checkpoint's own tokenizer.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpointFolder, SafetensorsCheckpoint } from '../../../tools/lib/checkpoint.ts';
import { makeTinyCheckpoint, type TinyCheckpoint } from '../../../tools/lib/tiny-checkpoint.ts';
import { videoFramePixelValues } from '../image.ts';
import { buildPrompt } from '../prompt.ts';
import { Molmo2Tokenizer } from '../tokenizer.ts';
import { ReferenceModel } from './index.ts';
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
