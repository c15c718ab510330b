import { describe, expect, it } from 'vitest';
import { renderFrame } from '../../src/demo/scenes.ts';
import { DEMO_SPLITS, drillQuestions, singleShapeQuestions } from './curriculum.ts';

describe('training lessons', () => {
  it('the drill asks Point about every colour and shape in an image scene, and Count about the most numerous', () => {
    for (let i = 0; i < 20; i++) {
      const [scene, qas] = drillQuestions(DEMO_SPLITS.train, i);
      expect(scene.kind).toBe('image');
      const present = new Set(scene.objects.map((o) => `${o.colour} ${o.shape}`));
      const points = qas.filter((q) => q.kind === 'point');
      expect(points.map((q) => `${q.target!.colour} ${q.target!.shape}`).sort()).toEqual([...present].sort());
      // Every answered point is one of the scene's shapes: one per object, none absent.
      expect(points.reduce((n, q) => n + (q.answer.match(/<points coords="1 ([^"]*)"/)![1].split(' ').length / 3), 0)).toBe(scene.objects.length);
      const counts = qas.filter((q) => q.kind === 'count');
      expect(counts).toHaveLength(1);
      const most = Math.max(...[...present].map((t) => scene.objects.filter((o) => `${o.colour} ${o.shape}` === t).length));
      expect(counts[0].answer).toMatch(new RegExp(`shows a total of ${most}\\.$`));
    }
  });

  it('the single-shape lesson walks the split in order, taking only scenes with one shape', () => {
    let from = 0;
    const seen: number[] = [];
    for (let k = 0; k < 5; k++) {
      const [scene, qas, next] = singleShapeQuestions(DEMO_SPLITS.train, from);
      expect(scene.objects).toHaveLength(1);
      expect(next).toBeGreaterThan(from);
      seen.push(next - 1);
      expect(qas.map((q) => q.kind)).toEqual(['point', 'count']);
      expect(qas[1].answer).toMatch(/shows a total of 1\.$/);
      from = next;
    }
    expect(new Set(seen).size).toBe(5);
    // The plain lesson: the same scene, its background one flat colour.
    const [plain] = singleShapeQuestions(DEMO_SPLITS.train, 0, { plain: true });
    const [textured] = singleShapeQuestions(DEMO_SPLITS.train, 0);
    expect(plain.objects).toEqual(textured.objects);
    const rgb = renderFrame(plain, 0);
    const corner = (x: number, y: number) => [...rgb.subarray(3 * (y * plain.width + x), 3 * (y * plain.width + x) + 3)];
    expect(corner(0, 0)).toEqual(corner(plain.width - 1, plain.height - 1));
  });
});
