// Training samples for the demo model, made the way the app makes its inputs: a generated scene's
// frames go through Molmo2's real preprocessing (src/molmo2/image.ts), the question through the
// checkpoint's own chat template and the Qwen3 tokenizer (src/molmo2/prompt.ts); the answer, in
// Molmo2's output grammar, follows as tokens and ends with <|im_end|>. Samples travel to the PyTorch
// trainer (train.py) as binary records on a pipe; the format is written here and read there.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { modelChatTemplate, type ChatTemplate } from '../../src/molmo2/chat-template.ts';
import { parseMolmo2Config, parseProcessorSettings, type Molmo2Config, type ProcessorSettings } from '../../src/molmo2/config.ts';
import { imagePixelValues, planImage, videoFramePixelValues } from '../../src/molmo2/image.ts';
import { buildPrompt } from '../../src/molmo2/prompt.ts';
import { Molmo2Tokenizer } from '../../src/molmo2/tokenizer.ts';
import { frameTimeS, renderFrame, type Scene } from '../../src/demo/scenes.ts';
import type { SceneQA } from '../../src/demo/scene-answers.ts';
import { attentionTargets, patchCentres, type AttentionTarget } from './attention-targets.ts';

/** What turns a scene and a question into model inputs: a checkpoint folder's config, tokenizer, template and processor settings. */
export interface SampleContext {
  config: Molmo2Config;
  tokenizer: Molmo2Tokenizer;
  chatTemplate: ChatTemplate;
  settings: ProcessorSettings;
}

export async function loadSampleContext(checkpointDir: string): Promise<SampleContext> {
  const json = async (f: string) => JSON.parse(await readFile(join(checkpointDir, f), 'utf8'));
  const check = parseMolmo2Config(await json('config.json'), await json('generation_config.json'));
  if (!check.config) throw new Error(`${checkpointDir}: ${[...check.missing, ...check.errors].join('; ')}`);
  const tokenizerConfig = await json('tokenizer_config.json');
  const chatTemplate = modelChatTemplate(await readFile(join(checkpointDir, 'chat_template.jinja'), 'utf8'), tokenizerConfig);
  if (!chatTemplate) throw new Error(`${checkpointDir} has no chat template`);
  return {
    config: check.config,
    tokenizer: new Molmo2Tokenizer(await json('tokenizer.json'), tokenizerConfig),
    chatTemplate,
    settings: parseProcessorSettings({
      preprocessor: await json('preprocessor_config.json'),
      processor: await json('processor_config.json'),
      video: await json('video_preprocessor_config.json'),
    }),
  };
}

/** One question about one scene, as the model sees it, with its answer appended. */
export interface TrainingSample {
  /** Prompt then answer then <|im_end|>. */
  inputIds: Int32Array;
  tokenTypeIds: Uint8Array;
  /** Index of the first answer token: the loss covers [answerStart, length). */
  answerStart: number;
  pooledIdx: Int32Array;
  poolSize: number;
  numCrops: number;
  /** [numCrops, patches, patchDim] float32. */
  pixelValues: Float32Array;
  /** Training-only: which image tokens the answer's coordinates should read (attention-targets.ts). */
  attend: AttentionTarget[];
}



/** Every question about one scene, the scene preprocessed once. */
export function buildSamples(ctx: SampleContext, scene: Scene, qas: Pick<SceneQA, 'question' | 'answer'>[]): TrainingSample[] {
  const first = buildSample(ctx, scene, qas[0]);
  return [first, ...qas.slice(1).map((qa) => buildSample(ctx, scene, qa, first.pixelValues))];
}

/** Encodes one scene's samples as a group: the first record with the pixels, the others after it without. */
export function encodeGroup(samples: TrainingSample[], ctx: SampleContext): Buffer {
  return Buffer.concat(samples.map((s, i) => encodeSample(s, ctx, i === 0 ? { followers: samples.length - 1 } : { follower: true })));
}

export function buildSample(ctx: SampleContext, scene: Scene, qa: Pick<SceneQA, 'question' | 'answer'>, pixels?: Float32Array): TrainingSample {
  const { tokenizer, chatTemplate, settings, config } = ctx;
  const crop = config.vit.numPos * config.vit.patchSize * config.vit.patchSize * 3;
  let pixelValues: Float32Array;
  let prompt;
  let plan;
  if (scene.kind === 'image') {
    plan = planImage(scene.width, scene.height, settings);
    pixelValues = pixels ?? imagePixelValues(renderFrame(scene, 0), scene.width, scene.height, settings, undefined, plan);
    prompt = buildPrompt({ tokenizer, chatTemplate, tokens: config.tokens, visual: { kind: 'images', plans: [plan] }, conversation: { question: qa.question }, settings });
  } else {
    const timestamps = Array.from({ length: scene.frames }, (_, k) => frameTimeS(scene, k));
    if (pixels) pixelValues = pixels;
    else {
      pixelValues = new Float32Array(scene.frames * crop);
      for (let k = 0; k < scene.frames; k++) pixelValues.set(videoFramePixelValues(renderFrame(scene, k), scene.width, scene.height, settings), k * crop);
    }
    prompt = buildPrompt({ tokenizer, chatTemplate, tokens: config.tokens, visual: { kind: 'video', timestamps }, conversation: { question: qa.question }, settings });
  }
  const answerIds = tokenizer.encode(qa.answer);
  const answer = [...answerIds, config.tokens.eos];
  const inputIds = new Int32Array(prompt.inputIds.length + answer.length);
  inputIds.set(prompt.inputIds);
  inputIds.set(answer, prompt.inputIds.length);
  const tokenTypeIds = new Uint8Array(inputIds.length);
  tokenTypeIds.set(prompt.tokenTypeIds);
  return {
    inputIds,
    tokenTypeIds,
    answerStart: prompt.inputIds.length,
    pooledIdx: prompt.pooledIdx,
    poolSize: prompt.poolSize,
    numCrops: prompt.numCrops,
    pixelValues,
    attend: attentionTargets({
      scene,
      answer: qa.answer,
      answerIds,
      encode: (text) => tokenizer.encode(text),
      answerStart: prompt.inputIds.length,
      inputIds,
      imagePatchId: config.tokens.imagePatch,
      pooledIdx: prompt.pooledIdx,
      poolSize: prompt.poolSize,
      centres: patchCentres(scene, Math.sqrt(config.vit.numPos), settings, plan),
    }),
  };
}

const MAGIC = 0x3153324d; // "M2S1"

export interface EncodeOptions {
  /** float32 rows after the sample (the reference's logits, in a check file). */
  extra?: { rows: number; cols: number; values: Float32Array };
  /** Questions about the same visual input that follow this record (they carry no pixels). */
  followers?: number;
  /** This record follows one with the same visual input: its pixels and pooled_idx are left out. */
  follower?: boolean;
}

/**
 * One record: u32 magic, u32 header length, header JSON, then int32 ids, uint8 token types, int32
 * pooled_idx, float32 pixel_values (both absent in a follower), and the `extra` float32 rows.
 */
export function encodeSample(s: TrainingSample, ctx: SampleContext, o: EncodeOptions = {}): Buffer {
  const { extra, follower = false } = o;
  const header = Buffer.from(
    JSON.stringify({
      seq: s.inputIds.length,
      answer_start: s.answerStart,
      follower,
      followers: o.followers ?? 0,
      crops: follower ? 0 : s.numCrops,
      pool_rows: follower || !s.poolSize ? 0 : s.pooledIdx.length / s.poolSize,
      pool_size: s.poolSize,
      patches: ctx.config.vit.numPos,
      patch_dim: ctx.config.vit.patchSize * ctx.config.vit.patchSize * 3,
      image_patch_id: ctx.config.tokens.imagePatch,
      extra_rows: extra?.rows ?? 0,
      extra_cols: extra?.cols ?? 0,
      attend: s.attend.map((t) => [t.from, t.to, t.keys, t.x, t.y]),
    }),
  );
  const prefix = Buffer.alloc(8);
  prefix.writeUInt32LE(MAGIC, 0);
  prefix.writeUInt32LE(header.length, 4);
  const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  const visual = follower ? [] : [bytes(s.pooledIdx), bytes(s.pixelValues)];
  return Buffer.concat([prefix, header, bytes(s.inputIds), bytes(s.tokenTypeIds), ...visual, ...(extra ? [bytes(extra.values)] : [])]);
}
