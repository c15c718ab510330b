import { beforeAll, describe, expect, it } from 'vitest';
import { parseMolmo2Config, parseProcessorSettings, type Molmo2Config, type ProcessorSettings } from '../molmo2/config.ts';
import { planImage } from '../molmo2/image.ts';
import { buildPrompt } from '../molmo2/prompt.ts';
import { molmo2ChatTemplate } from '../molmo2/reference/molmo2-4b-chat-template.ts';
import { Molmo2Tokenizer } from '../molmo2/tokenizer.ts';
import { readAssetJson } from '../../tools/lib/assets.ts';
import { buildTokenizerJson } from '../../tools/lib/tiny-checkpoint.ts';
import { askLimits, checkAskLimits, estimatePromptTokens, maxPrefillTokens, type AskShape } from './limits.ts';

const MiB = 2 ** 20;
const swiftshader = { maxStorageBufferBindingSize: 1024 * MiB, maxBufferSize: 1024 * MiB };
const mobile = { maxStorageBufferBindingSize: 128 * MiB, maxBufferSize: 256 * MiB };

let config: Molmo2Config;
let settings: ProcessorSettings;
let tokenizer: Molmo2Tokenizer;

beforeAll(async () => {
  const check = parseMolmo2Config(await readAssetJson('config.json'), await readAssetJson('generation_config.json'));
  config = check.config!;
  settings = parseProcessorSettings({
    preprocessor: await readAssetJson('preprocessor_config.json'),
    processor: await readAssetJson('processor_config.json'),
    video: await readAssetJson('video_preprocessor_config.json'),
  });
  tokenizer = new Molmo2Tokenizer(await buildTokenizerJson(), await readAssetJson('tokenizer_config.json'));
});

const shape = (s: AskShape) => s;
const times = (n: number, step = 0.5) => Array.from({ length: n }, (_, i) => i * step);
const video = (n: number, question = 'Point to the red car.'): AskShape => ({ question, visual: { kind: 'video', timestamps: times(n) } });

/** The exact prompt length (what the worker counts) for a shape. */
function exact(shape: AskShape): number {
  const v = shape.visual;
  const visual =
    v.kind === 'video'
      ? { kind: 'video' as const, timestamps: v.timestamps }
      : v.kind === 'images'
        ? { kind: 'images' as const, plans: v.sizes.map((s) => planImage(s.width, s.height, settings)) }
        : { kind: 'none' as const };
  return buildPrompt({ tokenizer, chatTemplate: molmo2ChatTemplate(), tokens: config.tokens, visual, conversation: { question: shape.question, history: shape.history }, settings }).inputIds.length;
}

describe('prompt estimate', () => {
  it('never undercounts, and is exact for the visual blocks (video, images, text, history)', () => {
    const shapes: AskShape[] = [
      video(1),
      video(16),
      video(64, 'How many birds land on the wire between the first and the last frame?'),
      { question: 'Point to the boats.', visual: { kind: 'images', sizes: [{ width: 536, height: 354 }] } },
      { question: 'Compare.', visual: { kind: 'images', sizes: [{ width: 640, height: 480 }, { width: 1280, height: 720 }, { width: 378, height: 378 }] } },
      { question: 'And now?', history: [{ question: 'Count the cups.', answer: 'There are 3 cups.' }], visual: { kind: 'video', timestamps: [0, 0.5, 1, 12.25] } },
      { question: 'Hi', visual: { kind: 'none' } },
    ];
    for (const s of shapes) {
      const e = estimatePromptTokens(s, { settings, geometry: { patchSize: 14, cropSize: 378 } });
      const n = exact(s);
      expect(e).toBeGreaterThanOrEqual(n);
      // Only text is over-estimated (bytes ≥ tokens): the user's words, the template's "user" /
      // "assistant" (~12 bytes per turn) and "Image k" labels — not the frames, however many.
      const text = [shape(s).question, ...(s.history ?? []).flatMap((h) => [h.question, h.answer])].join('');
      const labels = s.visual.kind === 'images' && s.visual.sizes.length > 1 ? s.visual.sizes.length : 0;
      expect(e - n).toBeLessThanOrEqual(new TextEncoder().encode(text).length + 12 * (1 + (s.history?.length ?? 0)) + 5 * labels);
    }
  });
});

describe('limits from the adapter and the context', () => {
  it('a decoder with chunked prefill takes the reference 384 frames (≥ 32k tokens) on a large GPU; one whole-prompt mask would not', () => {
    const large = { maxStorageBufferBindingSize: 2048 * MiB, maxBufferSize: 4096 * MiB }; // Chromium's ~2 GB binding cap
    const chunked = askLimits(config, settings, config.text.maxPositionEmbeddings, 2, large, 512);
    expect(chunked.maxPromptTokens).toBeGreaterThanOrEqual(32 * 1024);
    expect(chunked.maxFrames).toBe(settings.maxFrames);
    expect(settings.maxFrames).toBe(384);
    // Per chunk the folded mask is [n_rep·512, T] float32: the bound is in T, and exact.
    const nRep = config.text.numHeads / config.text.numKvHeads;
    const byMask = Math.floor((1024 * MiB) / (4 * nRep * 512));
    expect(maxPrefillTokens(config, 2, swiftshader, 512)).toBe(Math.min(byMask, Math.floor((1024 * MiB) / (2 * config.text.intermediateSize * 2))));
    // The same GPU with a decoder converted before chunking: the S×T mask caps the prompt near 11.6k.
    const whole = askLimits(config, settings, config.text.maxPositionEmbeddings, 2, large);
    expect(whole.maxPromptTokens).toBeLessThan(12 * 1024);
    expect(whole.maxFrames).toBeLessThan(150);
  });

  it('caps the prefill by the mask and MLP buffers: smaller on 128 MiB bindings', () => {
    const big = maxPrefillTokens(config, 4, swiftshader);
    const small = maxPrefillTokens(config, 4, mobile);
    expect(small).toBeLessThan(big);
    // The bound is tight: one more token would need a buffer larger than the binding.
    const t = config.text;
    const need = (s: number) => Math.max(4 * (t.numHeads / t.numKvHeads) * s * s, s * 2 * t.intermediateSize * 4);
    for (const [s, gpu] of [[big, swiftshader], [small, mobile]] as const) {
      expect(need(s)).toBeLessThanOrEqual(gpu.maxStorageBufferBindingSize);
      expect(need(s + 1)).toBeGreaterThan(gpu.maxStorageBufferBindingSize);
    }
  });

  it('derives a frame cap that a typical video question at the cap passes and one more frame fails', () => {
    for (const ctx of [2048, 4096, 8192]) {
      const limits = askLimits(config, settings, ctx, 4, swiftshader);
      expect(limits.maxPromptTokens).toBeLessThan(ctx);
      expect(limits.maxFrames).toBeGreaterThan(0);
      expect(limits.maxFrames).toBeLessThanOrEqual(settings.maxFrames);
      // The cap leaves room for a question of a few sentences.
      const question = 'Point to every person who picks up a cup, and say in which frame each one first appears on the table. '.repeat(2).slice(0, 160);
      expect(checkAskLimits(video(limits.maxFrames, question), limits).ok).toBe(true);
      expect(checkAskLimits(video(2 * limits.maxFrames + 2), limits).ok).toBe(false);
    }
    // A larger context allows more frames.
    expect(askLimits(config, settings, 8192, 4, swiftshader).maxFrames).toBeGreaterThan(askLimits(config, settings, 4096, 4, swiftshader).maxFrames);
  });

  it('refuses an over-long video with the numbers and a frame count that does fit', () => {
    const limits = askLimits(config, settings, 4096, 4, swiftshader);
    const shape = video(120);
    const n = exact(shape);
    const r = checkAskLimits(shape, limits, n);
    expect(r.ok).toBe(false);
    expect(r.promptTokens).toBe(n);
    expect(r.message).toContain(`${n} prompt tokens`);
    expect(r.message).toContain('120 frames');
    expect(r.message).toContain('4096-token context');
    expect(r.message).toMatch(/shorter range/);
    const suggested = Number(/at most (\d+) frames/.exec(r.message!)![1]);
    expect(suggested).toBeGreaterThan(0);
    expect(checkAskLimits(video(suggested), limits).ok).toBe(true);
  });

  it('names the GPU when its buffers, not the context, limit the prompt', () => {
    const limits = askLimits(config, settings, 8192, 4, mobile);
    expect(limits.maxPromptTokens).toBe(limits.maxPrefillTokens);
    const r = checkAskLimits(video(60), limits);
    expect(r.ok).toBe(false);
    expect(r.message).toMatch(/GPU's buffers allow a prompt of at most \d+ tokens/);
  });

  it('refuses more frames than the processor takes, and images with more crops than one vision run holds', () => {
    const limits = askLimits(config, settings, 1 << 20, 4, swiftshader);
    expect(checkAskLimits(video(settings.maxFrames + 1), limits).message).toMatch(new RegExp(`at most ${settings.maxFrames} per question`));
    const tiny = askLimits(config, settings, 8192, 4, { maxStorageBufferBindingSize: 64 * MiB, maxBufferSize: 64 * MiB });
    const r = checkAskLimits({ question: 'Where?', visual: { kind: 'images', sizes: [{ width: 1920, height: 1080 }] } }, tiny);
    expect(r.ok).toBe(false);
    expect(r.message).toMatch(/crops.*smaller image/);
  });
});
