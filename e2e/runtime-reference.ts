// Node side of the runtime tests: test pictures and the fp32 reference implementation's greedy answer
// for the same inputs, computed straight from src/molmo2 (preprocessing, prompt, reference model) —
// independent of the browser runtime's own input handling.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseProcessorSettings, type ProcessorSettings } from '../src/molmo2/config.ts';
import { imagePixelValues, planImage, videoFramePixelValues } from '../src/molmo2/image.ts';
import { modelChatTemplate, type ChatTemplate } from '../src/molmo2/chat-template.ts';
import { buildPrompt } from '../src/molmo2/prompt.ts';
import { ReferenceModel } from '../src/molmo2/reference/index.ts';
import { Molmo2Tokenizer } from '../src/molmo2/tokenizer.ts';
import { MODEL_DIR, type RuntimeModel } from './runtime-model.ts';

/** RGBA pixels as plain JSON, the way the tests hand pictures to the page. */
export interface PlainImage {
  width: number;
  height: number;
  rgba: number[];
}

/** A deterministic opaque test picture; `seed` varies it. */
export function picture(width: number, height: number, seed: number): PlainImage {
  const rgba: number[] = new Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      rgba[i] = (x * 7 + y * 3 + seed * 41) & 255;
      rgba[i + 1] = (x * 2 + y * 11 + seed * 13 + ((x * y) % 17) * 9) & 255;
      rgba[i + 2] = ((x ^ y) * 5 + seed * 97) & 255;
      rgba[i + 3] = 255;
    }
  }
  return { width, height, rgba };
}

function rgbOf(p: PlainImage): Uint8Array {
  const rgb = new Uint8Array(p.width * p.height * 3);
  for (let i = 0; i < p.width * p.height; i++) {
    rgb[3 * i] = p.rgba[4 * i];
    rgb[3 * i + 1] = p.rgba[4 * i + 1];
    rgb[3 * i + 2] = p.rgba[4 * i + 2];
  }
  return rgb;
}

/** The chat template of the converted folder `dir`, as the app's loader reads it. */
export function folderChatTemplate(dir = MODEL_DIR): ChatTemplate {
  const read = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') : undefined);
  const config = read('tokenizer_config.json');
  const template = modelChatTemplate(read('chat_template.jinja'), config === undefined ? undefined : JSON.parse(config));
  if (!template) throw new Error(`${dir} has no chat template`);
  return template;
}

export interface ReferenceAnswer {
  tokens: number[];
  logits: Float32Array[];
  promptTokens: number;
}

export class RuntimeReference {
  private constructor(
    private readonly model: ReferenceModel,
    private readonly tokenizer: Molmo2Tokenizer,
    private readonly settings: ProcessorSettings,
    private readonly chatTemplate: ChatTemplate,
  ) {}

  /**
   * The reference on the model's weights, or on `tensors` (e.g. the weights a quantized variant
   * stores), with the processor settings of the converted folder `dir`.
   */
  static async create(m: RuntimeModel, tensors: RuntimeModel['tensors'] = m.tensors, dir = MODEL_DIR): Promise<RuntimeReference> {
    const json = (f: string) => JSON.parse(readFileSync(join(dir, f), 'utf8'));
    const settings = parseProcessorSettings({ preprocessor: json('preprocessor_config.json'), processor: json('processor_config.json'), video: json('video_preprocessor_config.json') });
    const tokenizer = new Molmo2Tokenizer(m.tokenizerJson, m.tokenizerConfig);
    return new RuntimeReference(await ReferenceModel.load(m.config, tensors), tokenizer, settings, folderChatTemplate(dir));
  }

  decode(ids: number[]): string {
    return this.tokenizer.decode(ids);
  }

  answer(question: string, visual: { images?: PlainImage[]; frames?: { image: PlainImage; timestamp: number }[] }, maxNewTokens: number): ReferenceAnswer {
    const crop = 729 * 588;
    let pixels = new Float32Array(0);
    let prompt;
    if (visual.images) {
      const plans = visual.images.map((p) => planImage(p.width, p.height, this.settings));
      pixels = new Float32Array(plans.reduce((s, p) => s + p.numCrops, 0) * crop);
      let at = 0;
      visual.images.forEach((p, i) => {
        const px = imagePixelValues(rgbOf(p), p.width, p.height, this.settings, undefined, plans[i]);
        pixels.set(px, at);
        at += px.length;
      });
      prompt = buildPrompt({ tokenizer: this.tokenizer, chatTemplate: this.chatTemplate, tokens: this.model.config.tokens, visual: { kind: 'images', plans }, conversation: { question }, settings: this.settings });
    } else if (visual.frames) {
      pixels = new Float32Array(visual.frames.length * crop);
      visual.frames.forEach((f, i) => pixels.set(videoFramePixelValues(rgbOf(f.image), f.image.width, f.image.height, this.settings), i * crop));
      const timestamps = visual.frames.map((f) => f.timestamp);
      prompt = buildPrompt({ tokenizer: this.tokenizer, chatTemplate: this.chatTemplate, tokens: this.model.config.tokens, visual: { kind: 'video', timestamps }, conversation: { question }, settings: this.settings });
    } else {
      prompt = buildPrompt({ tokenizer: this.tokenizer, chatTemplate: this.chatTemplate, tokens: this.model.config.tokens, visual: { kind: 'none' }, conversation: { question }, settings: this.settings });
    }
    const features = prompt.numCrops > 0 ? this.model.visionFeatures(pixels, prompt.numCrops, prompt.pooledIdx, prompt.poolSize) : new Float32Array(0);
    const r = this.model.generateGreedy({ inputIds: prompt.inputIds, imageFeatures: features, tokenTypeIds: prompt.tokenTypeIds, maxNewTokens });
    return { tokens: r.tokens, logits: r.stepLogits, promptTokens: prompt.inputIds.length };
  }
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
