// A follow-up question with the conversation so far (`history` in the ask request) through the real
// inference worker (onnxruntime-web WebGPU on SwiftShader, the tiny random Molmo2): the prompt carries
// the earlier turn in Molmo2's chat format, and the answer's tokens and logits equal the fp32 reference
// implementation's greedy answer for that prompt.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { parseProcessorSettings, type ProcessorSettings } from '../src/molmo2/config.ts';
import { videoFramePixelValues } from '../src/molmo2/image.ts';
import { buildPrompt, type ChatTurn } from '../src/molmo2/prompt.ts';
import { ReferenceModel } from '../src/molmo2/reference/index.ts';
import { Molmo2Tokenizer } from '../src/molmo2/tokenizer.ts';
import { ask, load, openHarness } from './runtime-page.ts';
import { ensureRuntimeModel, MODEL_DIR } from './runtime-model.ts';
import { folderChatTemplate, maxAbsDiff, picture, type PlainImage } from './runtime-reference.ts';

let model: ReferenceModel;
let tokenizer: Molmo2Tokenizer;
let settings: ProcessorSettings;

test.beforeAll(async () => {
  test.setTimeout(300_000);
  const m = await ensureRuntimeModel();
  const json = (f: string) => JSON.parse(readFileSync(join(MODEL_DIR, f), 'utf8'));
  settings = parseProcessorSettings({ preprocessor: json('preprocessor_config.json'), processor: json('processor_config.json'), video: json('video_preprocessor_config.json') });
  model = await ReferenceModel.load(m.config, m.tensors);
  tokenizer = new Molmo2Tokenizer(m.tokenizerJson, m.tokenizerConfig);
});

const frames = [0, 1].map((k) => ({ image: picture(64, 36, 70 + k), timestamp: k * 0.5, key: `history-clip#${k}` }));

function rgb(p: PlainImage): Uint8Array {
  const out = new Uint8Array(p.width * p.height * 3);
  for (let i = 0; i < p.width * p.height; i++) out.set(p.rgba.slice(4 * i, 4 * i + 3), 3 * i);
  return out;
}

/** The reference's prompt for the clip and conversation, and its greedy answer. */
function reference(question: string, history: ChatTurn[], maxNewTokens: number) {
  const crop = 729 * 588;
  const pixels = new Float32Array(frames.length * crop);
  frames.forEach((f, i) => pixels.set(videoFramePixelValues(rgb(f.image), f.image.width, f.image.height, settings), i * crop));
  const prompt = buildPrompt({ tokenizer, chatTemplate: folderChatTemplate(), tokens: model.config.tokens, visual: { kind: 'video', timestamps: frames.map((f) => f.timestamp) }, conversation: { question, history }, settings });
  const features = model.visionFeatures(pixels, prompt.numCrops, prompt.pooledIdx, prompt.poolSize);
  const r = model.generateGreedy({ inputIds: prompt.inputIds, imageFeatures: features, tokenTypeIds: prompt.tokenTypeIds, maxNewTokens });
  return { inputIds: Array.from(prompt.inputIds), tokens: r.tokens, logits: r.stepLogits };
}

const FIRST = 'Point to the café ☕ sign.';
const ANSWER = 'There is <points coords="1 1 500 500">one sign</points>, next to the 🐶.';
const FOLLOW_UP = 'And where is the dog now?';

test('a follow-up with history: the earlier turn in the chat format, tokens and logits as the reference', async ({ page }) => {
  test.setTimeout(600_000);
  const history = [{ question: FIRST, answer: ANSWER }];
  const want = reference(FOLLOW_UP, history, 5);

  // The reference prompt ends with the conversation as Molmo2's chat template writes it (written out
  // here, not built by the code under test): each turn between <|im_start|> and <|im_end|>, the
  // earlier answer after " <|im_start|>assistant\n", then the generation prompt.
  const chat = `<|im_start|>user\n${FIRST}<|im_end|>\n <|im_start|>assistant\n${ANSWER}<|im_end|>\n<|im_start|>user\n${FOLLOW_UP}<|im_end|>\n<|im_start|>assistant\n`;
  const chatIds = tokenizer.encode(chat);
  expect(want.inputIds.slice(-chatIds.length)).toEqual(chatIds);
  expect(want.inputIds.length).toBeGreaterThan(chatIds.length + 2 * 81); // the video's tokens come before

  await openHarness(page);
  await load(page, { dtype: 'fp32', warmUp: false });
  const first = await ask(page, FIRST, { kind: 'video', frames }, { maxNewTokens: 2 });
  expect(first.done.tokens.length).toBeGreaterThan(0);

  const followUp = await ask(page, FOLLOW_UP, { kind: 'video', frames }, { maxNewTokens: 5, returnLogits: true, history });
  const t = followUp.done.timings;
  // The worker's prompt has the reference's length, and the answer is the reference's, logit by logit:
  // a prompt that differed in any token (the history left out, misplaced or formatted otherwise) would not give these.
  expect(t.promptTokens).toBe(want.inputIds.length);
  expect(followUp.done.tokens).toEqual(want.tokens);
  expect(followUp.done.logits).toHaveLength(want.logits.length);
  expect(Math.max(...want.logits.map((l, i) => maxAbsDiff(followUp.done.logits![i], l)))).toBeLessThan(2e-3);
  // Same frames: no vision work, and the first question's prompt (now replayed as history) is kept.
  expect(t.visionEncoded).toBe(0);
  expect(t.prefixReusedTokens).toBeGreaterThan(2 * 81);
  expect(t.prefixReusedTokens).toBeLessThan(t.promptTokens);

  // The history matters: without it the prompt is shorter by exactly the earlier turn, and the logits differ.
  const alone = await ask(page, FOLLOW_UP, { kind: 'video', frames }, { maxNewTokens: 1, returnLogits: true });
  const turn = tokenizer.encode(`<|im_start|>user\n${FIRST}<|im_end|>\n <|im_start|>assistant\n${ANSWER}<|im_end|>\n`);
  expect(alone.done.timings.promptTokens).toBe(want.inputIds.length - turn.length);
  expect(maxAbsDiff(alone.done.logits![0], want.logits[0])).toBeGreaterThan(1e-2);
});
