import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createAnswerParser, parseAnswer, type FrameSize } from './answer.ts';

const img: FrameSize[] = [{ width: 1000, height: 500 }];
const video = { fps: 30 };

describe('html-v2 points', () => {
  it('reads a single-image pointing answer (molmo2.md §14.3 a)', () => {
    const r = parseAnswer('<points coords="1 1 990 800">label</points>', img);
    expect(r.points).toEqual([{ key: 1, id: 1, x: 990, y: 400, xNorm: 0.99, yNorm: 0.8, label: 'label', kind: 'points' }]);
    expect(r.warnings).toEqual([]);
  });

  it('reads a counting sentence with its points', () => {
    const r = parseAnswer('Counting the <points coords="1 1 900 400 2 911 800">aasdf</points> shows a total of 2.', img);
    expect(r.count).toBe(2);
    expect(r.points.map((p) => [p.id, p.x, p.y])).toEqual([
      [1, 900, 200],
      [2, 911, 400],
    ]);
    expect(r.warnings).toEqual([]);
  });

  it('uses each image’s own size in multi-image answers, ids continuing', () => {
    const frames = [
      { width: 100, height: 100 },
      { width: 200, height: 400 },
      { width: 1000, height: 10 },
    ];
    const r = parseAnswer('<points coords="1 1 210 330 2 640 300;3 3 500 512">cats</points>', frames);
    expect(r.points.map((p) => [p.key, p.id, p.x, p.y])).toEqual([
      [1, 1, 21, 33],
      [1, 2, 64, 30],
      [3, 3, 500, 5.12],
    ]);
  });

  it('warns about an image that was not sent', () => {
    const r = parseAnswer('<points coords="1 1 100 100;4 2 500 500">x</points>', img);
    expect(r.points).toHaveLength(1);
    expect(r.warnings.join()).toMatch(/image 4/);
  });

  it('accepts tab, colon and comma separators and an alt attribute', () => {
    const r = parseAnswer('<points alt="boats" coords="0.1 1 911 800\t0.2 2 900 400:0.3 3 100 100,0.4 4 000 1000">boats</points>', [{ width: 640, height: 360 }], video);
    expect(r.points.map((p) => p.key)).toEqual([0.1, 0.2, 0.3, 0.4]);
    expect(r.points[3]).toMatchObject({ x: 0, y: 360 });
  });

  it('drops coordinates beyond 1000 with a warning, as the reference filter does', () => {
    const r = parseAnswer('<points coords="1 1 1200 100 2 500 500">x</points>', img);
    expect(r.points.map((p) => p.id)).toEqual([2]);
    expect(r.warnings.join()).toMatch(/outside/);
  });
});

describe('video points and tracks', () => {
  const frames = [{ width: 640, height: 360 }];

  it('keys video points by timestamp, relative to the first frame size', () => {
    const r = parseAnswer('<points coords="0.5 1 120 340;2.0 2 600 410">birds</points>', frames, video);
    expect(r.points.map((p) => [p.key, p.id, +p.x.toFixed(6), +p.y.toFixed(6), p.xNorm, p.yNorm, p.label])).toEqual([
      [0.5, 1, 76.8, 122.4, 0.12, 0.34, 'birds'],
      [2, 2, 384, 147.6, 0.6, 0.41, 'birds'],
    ]);
  });

  it('reads tracks with stable ids and gaps (objects omitted in some frames)', () => {
    const text =
      '<tracks coords="0.0 1 200 100 2 200 800 3 500 200;1.0 1 900 900 3 050 050 4 060 060 5 100 100;2.0 1 500 500 2 001 001">debug</tracks>';
    const r = parseAnswer(text, frames, video);
    expect(r.points.every((p) => p.kind === 'tracks' && p.label === 'debug')).toBe(true);
    const byId = (id: number) => r.points.filter((p) => p.id === id).map((p) => p.key);
    expect(byId(1)).toEqual([0, 1, 2]);
    expect(byId(2)).toEqual([0, 2]);
    expect(byId(3)).toEqual([0, 1]);
    expect(byId(5)).toEqual([1]);
  });

  it('keeps the first of two positions of one object at one time', () => {
    const r = parseAnswer('<tracks coords="0.0 1 200 100 1 300 300">x</tracks>', frames, video);
    expect(r.points).toHaveLength(1);
    expect(r.warnings.join()).toMatch(/twice/);
  });
});

describe('counting sentences', () => {
  it.each([
    ['There are 3 <points coords="1 1 100 100 2 200 200 3 300 300">cups</points>.', 3, 3],
    ['There are none.', 0, 0],
    ['7', 7, 0],
    ['There is 1 <points coords="1 1 100 100">dog</points>.', 1, 1],
  ])('%s', (text, count, points) => {
    const r = parseAnswer(text, img);
    expect(r.count).toBe(count);
    expect(r.points).toHaveLength(points);
    expect(r.warnings).toEqual([]);
  });

  it('warns when the stated count disagrees with the points', () => {
    const r = parseAnswer('Counting the <points coords="1 1 100 100">cups</points> shows a total of 4.', img);
    expect(r.count).toBe(4);
    expect(r.warnings.join()).toMatch(/states 4 but points to 1/);
  });
});

describe('older Molmo formats', () => {
  it('reads <point x y> and <points x1 y1 …> on a 0–100 scale', () => {
    const a = parseAnswer('<point x="12.5" y="50" alt="cat">cat</point>', img);
    expect(a.points).toMatchObject([{ key: 1, id: 1, x: 125, y: 250 }]);
    const b = parseAnswer('<points x1="10" y1="20" x2="30" y2="40" alt="dogs">dogs</points>', img);
    expect(b.points.map((p) => [p.x, p.y])).toEqual([
      [100, 100],
      [300, 200],
    ]);
  });
});

describe('truncated and garbled input', () => {
  it('keeps the complete points of a tag cut off mid-way, with a warning', () => {
    const r = parseAnswer('<tracks coords="0.0 1 200 100 2 200 800;0.5 1 21', [{ width: 100, height: 100 }], video);
    expect(r.points.map((p) => [p.key, p.id])).toEqual([
      [0, 1],
      [0, 2],
    ]);
    expect(r.warnings.join()).toMatch(/truncated/);
  });

  it.each(['<points coords="', '<points coords="abc">x</points>', '<tracks', '<<<>>>"', '<points coords="1.2.3 1 100 100">', ''])('never throws on %j', (text) => {
    expect(() => parseAnswer(text, img, video)).not.toThrow();
    expect(() => parseAnswer(text, [], video)).not.toThrow();
  });

  it('reports a malformed key', () => {
    const r = parseAnswer('<points coords="1.2.3 1 100 100">x</points>', img);
    expect(r.points).toEqual([]);
    expect(r.warnings.join()).toMatch(/malformed key/);
  });
});

// Formats points the way Molmo2's html-v2 formatter does (molmo2.md §14.1): "%03d" of round(1000·v),
// groups joined by ";", ids continuing.
function format(groups: { key: string; pts: [number, number][] }[], tag: 'points' | 'tracks', label: string) {
  let id = 0;
  const body = groups.map((g) => `${g.key} ${g.pts.map(([x, y]) => `${++id} ${String(x).padStart(3, '0')} ${String(y).padStart(3, '0')}`).join(' ')}`).join(';');
  return `<${tag} coords="${body}">${label}</${tag}>`;
}

const groupsArb = fc.array(
  fc.record({
    t: fc.integer({ min: 0, max: 600 }),
    pts: fc.array(fc.tuple(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 1000 })), { minLength: 1, maxLength: 4 }),
  }),
  { minLength: 1, maxLength: 6 },
);

describe('properties (fixed seed)', () => {
  const params = { seed: 20261122, numRuns: 150 };

  it('formatting then parsing gives the same points', () => {
    fc.assert(
      fc.property(groupsArb, (gs) => {
        const groups = gs.map((g) => ({ key: (g.t / 10).toFixed(1), pts: g.pts as [number, number][] }));
        const r = parseAnswer(format(groups, 'points', 'things'), [{ width: 1920, height: 1080 }], { mode: 'video' });
        const expected = groups.flatMap((g) => g.pts.map(([x, y]) => ({ key: Number(g.key), x: (x / 1000) * 1920, y: (y / 1000) * 1080 })));
        expect(r.points.map((p) => ({ key: p.key, x: p.x, y: p.y }))).toEqual(expected);
        expect(r.points.map((p) => p.id)).toEqual(expected.map((_, i) => i + 1));
        expect(r.warnings).toEqual([]);
      }),
      params,
    );
  });

  it('never throws on arbitrary text and keeps points consistent', () => {
    const alphabet = fc.constantFrom(...'<>/"=; \t:,.0123456789pointsrackcoTheraenon'.split(''), '<points coords="', '</points>', '<tracks coords="', 'There are ');
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 80 }).map((a) => a.join('')), (text) => {
        const r = parseAnswer(text, img, video);
        for (const p of r.points) {
          expect(p.xNorm).toBeGreaterThanOrEqual(0);
          expect(p.xNorm).toBeLessThanOrEqual(1);
          expect(Number.isInteger(p.id)).toBe(true);
        }
        if (r.count !== undefined) expect(Number.isInteger(r.count)).toBe(true);
      }),
      params,
    );
  });

  it('incremental parsing equals whole-text parsing for any chunking', () => {
    fc.assert(
      fc.property(groupsArb, fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 40 }), (gs, cuts) => {
        const groups = gs.map((g) => ({ key: (g.t / 10).toFixed(1), pts: g.pts as [number, number][] }));
        const text = `Counting the ${format(groups, 'tracks', 'cars')} shows a total of ${groups.length}.`;
        const frames = [{ width: 640, height: 480 }];
        const parser = createAnswerParser(frames, { fps: 2 });
        const streamed = [];
        let at = 0;
        for (let i = 0; at < text.length; i++) {
          const n = cuts[i % cuts.length];
          streamed.push(...parser.push(text.slice(at, at + n)));
          at += n;
        }
        const whole = parseAnswer(text, frames, { fps: 2 });
        expect(parser.finish()).toEqual(whole);
        // Every streamed point is final apart from its label (known once the closing tag arrives).
        expect(streamed.map(({ label: _l, ...p }) => p)).toEqual(whole.points.map(({ label: _l, ...p }) => p));
      }),
      params,
    );
  });
});
