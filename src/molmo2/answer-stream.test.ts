import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAnswer, parsePartialAnswer, type FrameSize, type ParseOptions } from './answer.ts';
import { createAnswerStream } from './answer-stream.ts';

const frames: FrameSize[] = [
  { width: 640, height: 360 },
  { width: 200, height: 100 },
];

/** A well-formed answer in Molmo2's html-v2 grammar, maybe inside a counting sentence. */
const validAnswer = fc
  .record({
    tag: fc.constantFrom('points', 'tracks'),
    video: fc.boolean(),
    groups: fc.array(
      fc.record({
        t: fc.integer({ min: 0, max: 300 }),
        image: fc.integer({ min: 1, max: 3 }),
        pts: fc.array(fc.tuple(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 1000 })), { minLength: 1, maxLength: 4 }),
      }),
      { minLength: 1, maxLength: 5 },
    ),
    separator: fc.constantFrom(';', '\t'),
    label: fc.constantFrom('cars', 'a > b', '', 'red <b>cups</b>'),
    sentence: fc.constantFrom('plain', 'total', 'there'),
  })
  .map(({ tag, video, groups, separator, label, sentence }) => {
    const d3 = (n: number) => String(n).padStart(3, '0');
    const body = groups.map((g) => `${video ? (g.t / 10).toFixed(1) : g.image} ${g.pts.map(([id, x, y]) => `${id} ${d3(x)} ${d3(y)}`).join(' ')}`).join(separator);
    const element = `<${tag} coords="${body}">${label}</${tag}>`;
    const n = groups.reduce((sum, g) => sum + g.pts.length, 0);
    const text = sentence === 'total' ? `Counting the ${element} shows a total of ${n}.` : sentence === 'there' ? `There are ${n} ${element}.` : element;
    return { text, opts: { mode: video ? 'video' : 'images' } as ParseOptions };
  });

/** A valid answer cut short, or with characters inserted or removed at random places. */
const damagedAnswer = fc
  .tuple(validAnswer, fc.array(fc.tuple(fc.nat(), fc.constantFrom('', '<', '>', '"', ';', ' ', '9', '.', 'x', '<points coords="', '</tracks>'), fc.boolean()), { maxLength: 4 }), fc.nat())
  .map(([{ text, opts }, edits, cut]) => {
    let t = text;
    for (const [at, insert, remove] of edits) {
      const i = at % (t.length + 1);
      t = t.slice(0, i) + insert + t.slice(remove ? i + 1 : i);
    }
    return { text: t.slice(0, cut % (t.length + 1) || t.length), opts };
  });

/** Text from the grammar's own pieces in any order. */
const garbledAnswer = fc
  .tuple(
    fc.array(
      fc.constantFrom(...'<>/"=; \t:,.0123456789xy'.split(''), '<points coords="', '</points>', '<tracks coords="', '</tracks>', '<point x="', 'alt="', '1 200 300 ', '0.5 ', 'There are ', 'none', 'shows a total of ', '/>'),
      { maxLength: 60 },
    ),
    fc.boolean(),
  )
  .map(([pieces, video]) => ({ text: pieces.join(''), opts: { mode: video ? 'video' : 'images' } as ParseOptions }));

/** Token boundaries: chunk lengths of 1–8 characters, repeated. */
const chunking = fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 12 });

describe('streaming parser (fixed seed)', () => {
  it('gives exactly the whole-text results at every token boundary, for valid, damaged and garbled answers', () => {
    let compared = 0;
    let withPoints = 0;
    fc.assert(
      fc.property(fc.oneof(validAnswer, damagedAnswer, garbledAnswer), chunking, ({ text, opts }, cuts) => {
        const stream = createAnswerStream(frames, opts);
        let at = 0;
        let shown = JSON.stringify(stream.current());
        let version = stream.version();
        for (let i = 0; at < text.length; i++) {
          const n = cuts[i % cuts.length];
          stream.push(text.slice(at, at + n));
          at = Math.min(text.length, at + n);
          const now = stream.current();
          expect(now).toEqual(parsePartialAnswer(text.slice(0, at), frames, opts));
          compared++;
          // Whoever redraws only on a new version misses nothing.
          if (JSON.stringify(now) !== shown) expect(stream.version()).toBeGreaterThan(version);
          shown = JSON.stringify(now);
          version = stream.version();
        }
        const whole = parseAnswer(text, frames, opts);
        expect(stream.finish()).toEqual(whole);
        expect(stream.text()).toBe(text);
        if (whole.points.length > 0) withPoints++;
      }),
      { seed: 20261206, numRuns: 600 },
    );
    // The comparison ran at many boundaries, and many answers had points to compare.
    expect(compared).toBeGreaterThan(10_000);
    expect(withPoints).toBeGreaterThan(200);
  });

  it('hands out each point once, as soon as it is certain, in the order of the whole answer', () => {
    let compared = 0;
    fc.assert(
      fc.property(validAnswer, chunking, ({ text, opts }, cuts) => {
        const stream = createAnswerStream(frames, opts);
        const streamed = [];
        for (let at = 0, i = 0; at < text.length; i++) {
          streamed.push(...stream.push(text.slice(at, at + cuts[i % cuts.length])));
          at += cuts[i % cuts.length];
          // Nothing certain is held back: what the text so far shows has been handed out.
          expect(streamed.length).toBe(parsePartialAnswer(text.slice(0, at), frames, opts).points.length);
        }
        const whole = parseAnswer(text, frames, opts);
        expect(streamed).toEqual(whole.points.map(({ label: _label, ...p }) => p));
        compared++;
      }),
      { seed: 6122026, numRuns: 200 },
    );
    expect(compared).toBe(200);
  });

  it('keeps only a short end of a long answer as a string, token after token', () => {
    const groups = Array.from({ length: 400 }, (_, k) => `${(k / 2).toFixed(1)} 1 ${String(100 + (k % 800)).padStart(3, '0')} 500 2 600 ${String(200 + (k % 700)).padStart(3, '0')}`);
    const text = `Counting the <tracks coords="${groups.join(';')}">cars</tracks> shows a total of 2.`;
    const stream = createAnswerStream(frames, { mode: 'video' });
    let most = 0;
    for (let at = 0; at < text.length; at += 3) {
      stream.push(text.slice(at, at + 3));
      most = Math.max(most, stream.retained());
    }
    expect(text.length).toBeGreaterThan(10_000);
    expect(most).toBeLessThan(200);
    const done = stream.finish();
    expect(done.points).toHaveLength(800);
    expect(done).toEqual(parseAnswer(text, frames, { mode: 'video' }));
  });

  it('reads a label, a count and the older format once their text is complete', () => {
    const stream = createAnswerStream(frames, { mode: 'images' });
    stream.push('There are 1');
    expect(stream.current().count).toBe(1);
    stream.push('2 <point x="10" y="2');
    expect(stream.current()).toMatchObject({ count: 12, points: [] });
    expect(stream.push('0" alt="cup">cup</point>')).toMatchObject([{ kind: 'image', image: 1, id: 1, x: 64, y: 72 }]);
    stream.push('<points coords="2 2 500 500">cu');
    expect(stream.current().points[1].label).toBeUndefined();
    stream.push('ps</points>');
    expect(stream.current().points[1]).toMatchObject({ image: 2, x: 100, y: 50, label: 'cups' });
  });
});
