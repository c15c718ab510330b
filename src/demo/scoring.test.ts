import { describe, expect, it } from 'vitest';
import { countQA, groundTruth, pointQA, trackQA, NONE_ANSWER } from './scene-answers.ts';
import { makeClipScene, makeImageScene, type Scene, type SceneTarget } from './scenes.ts';
import { answeredCount, hitRadius, scorePoints, scoreTrack } from './scoring.ts';

/** An image scene with at least two objects of one colour and shape, and that target. */
function sceneWithPair(): { scene: Scene; target: SceneTarget } {
  for (let i = 0; i < 200; i++) {
    const scene = makeImageScene(11, i);
    for (const o of scene.objects) {
      if (scene.objects.filter((p) => p.colour === o.colour && p.shape === o.shape).length >= 2) return { scene, target: o };
    }
  }
  throw new Error('no scene with a pair');
}

/** Adds `dx` (0–1000 units) to every x coordinate of a coords="…" attribute. */
function shiftX(answer: string, dx: number): string {
  return answer.replace(/coords="([^"]*)"/, (_, coords: string) => {
    const groups = coords.split(';').map((g) => {
      const parts = g.split(' ');
      for (let i = 2; i < parts.length; i += 3) parts[i] = String(Math.min(1000, Number(parts[i]) + dx)).padStart(3, '0');
      return parts.join(' ');
    });
    return `coords="${groups.join(';')}"`;
  });
}

describe('scorePoints', () => {
  const { scene, target } = sceneWithPair();
  const truth = groundTruth(scene, target);

  it('hits every centre of the written answer, each within the 0–1000 rounding', () => {
    const s = scorePoints(scene, target, pointQA(scene, target).answer);
    expect(s.truth).toBe(truth.length);
    expect(s.hits).toBe(truth.length);
    expect(s.answered).toBe(truth.length);
    for (const e of s.errorsPx) expect(e).toBeLessThanOrEqual((Math.SQRT2 * scene.width) / 2000 + 1e-9);
  });

  it('misses points moved by more than the hit radius, and hits them within it', () => {
    const far = scorePoints(scene, target, shiftX(pointQA(scene, target).answer, 40));
    expect(hitRadius(scene)).toBeLessThan((40 / 1000) * scene.width - 1);
    expect(far.hits).toBe(0);
    expect(far.answered).toBe(truth.length);
    const near = scorePoints(scene, target, shiftX(pointQA(scene, target).answer, 10));
    expect(near.hits).toBe(truth.length);
  });

  it('matches each centre once: the same point written twice hits one centre', () => {
    const one = pointQA(scene, target).answer.replace(/coords="1 1 (\d+) (\d+)[^"]*"/, 'coords="1 1 $1 $2 2 $1 $2"');
    const s = scorePoints(scene, target, one);
    expect(s.answered).toBe(2);
    expect(s.hits).toBe(1);
  });

  it('reads the stated count, the points when none is stated, and 0 from "There are none."', () => {
    expect(answeredCount(scorePoints(scene, target, countQA(scene, target).answer))).toBe(truth.length);
    expect(answeredCount(scorePoints(scene, target, countQA(scene, target).answer.replace(/total of \d+/, 'total of 9')))).toBe(9);
    expect(answeredCount(scorePoints(scene, target, pointQA(scene, target).answer))).toBe(truth.length);
    expect(answeredCount(scorePoints(scene, target, NONE_ANSWER))).toBe(0);
  });
});

describe('scoreTrack', () => {
  const scene = makeClipScene(11, 3);
  const target = scene.objects[0];

  it('finds the target on every frame of the written track, within rounding', () => {
    const t = scoreTrack(scene, target, trackQA(scene, target).answer);
    expect(t.frames).toBe(scene.frames);
    expect(t.errorsPx).toHaveLength(scene.frames);
    for (const e of t.errorsPx) expect(e).not.toBeNull();
    for (const e of t.errorsPx) expect(e!).toBeLessThanOrEqual((Math.SQRT2 * scene.width) / 2000 + 1e-9);
  });

  it('leaves a frame the answer skips empty, and measures a moved point', () => {
    const answer = trackQA(scene, target).answer;
    const groups = answer.match(/coords="([^"]*)"/)![1].split(';');
    const skipped = answer.replace(groups[1] + ';', '');
    expect(scoreTrack(scene, target, skipped).errorsPx[1]).toBeNull();
    const moved = scoreTrack(scene, target, shiftX(answer, 100));
    for (const e of moved.errorsPx) expect(e!).toBeGreaterThan(0.09 * scene.width);
  });
});
