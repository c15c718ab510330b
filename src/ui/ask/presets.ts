// The ask panel's presets, in the order of their buttons and of their keys 1–5.
import type { Preset } from '../../state/results-types.ts';

/** The answer limits the page offers (tokens); never above the model's DEFAULT_MAX_NEW_TOKENS (2048). */
export const ANSWER_LIMITS = [64, 128, 256, 512, 1024, 2048] as const;

// Each preset's answer limit (max new tokens). The tokenizer writes each digit as its own token, so a
// point ("3 512 407 ") costs about 10 tokens. Point and Count: 512 is some 45 points — a few objects
// over a few frames with room to spare — and stops a looping answer early. Track: each object on
// every sampled frame, so longer, 1024. Free text and Describe: prose, the model's full 2048.
/** Each preset's question (the word in «» is selected so typing replaces it) and answer limit. */
export const PRESETS: { id: Preset; name: string; template: (video: boolean) => string; maxNewTokens: number }[] = [
  { id: 'point', name: 'Point', template: () => 'Point to the «objects».', maxNewTokens: 512 },
  { id: 'count', name: 'Count', template: () => 'How many «objects» are there?', maxNewTokens: 512 },
  { id: 'track', name: 'Track', template: () => 'Track the «object».', maxNewTokens: 1024 },
  { id: 'ask', name: 'Free text', template: () => '', maxNewTokens: 2048 },
  { id: 'describe', name: 'Describe', template: (video) => (video ? 'Describe what happens in this video.' : 'Describe this image.'), maxNewTokens: 2048 },
];

/** The preset's question, and which part of it to select (the object word; else the caret at the end). */
export function presetQuestion(preset: (typeof PRESETS)[number], video: boolean): { text: string; select: [number, number] } {
  const template = preset.template(video);
  const text = template.replace(/[«»]/g, '');
  const start = template.indexOf('«');
  return { text, select: start >= 0 ? [start, template.indexOf('»') - 1] : [text.length, text.length] };
}
