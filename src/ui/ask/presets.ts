// The ask panel's presets, in the order of their buttons and of their keys 1–5.
import type { Preset } from '../../state/results-types.ts';

/** Each preset's question; the word in «» is selected so typing replaces it. */
export const PRESETS: { id: Preset; name: string; template: (video: boolean) => string }[] = [
  { id: 'point', name: 'Point', template: () => 'Point to the «objects».' },
  { id: 'count', name: 'Count', template: () => 'How many «objects» are there?' },
  { id: 'track', name: 'Track', template: () => 'Track the «object».' },
  { id: 'ask', name: 'Free text', template: () => '' },
  { id: 'describe', name: 'Describe', template: (video) => (video ? 'Describe what happens in this video.' : 'Describe this image.') },
];

/** The preset's question, and which part of it to select (the object word; else the caret at the end). */
export function presetQuestion(preset: (typeof PRESETS)[number], video: boolean): { text: string; select: [number, number] } {
  const template = preset.template(video);
  const text = template.replace(/[«»]/g, '');
  const start = template.indexOf('«');
  return { text, select: start >= 0 ? [start, template.indexOf('»') - 1] : [text.length, text.length] };
}
