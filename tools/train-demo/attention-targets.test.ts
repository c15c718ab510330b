import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { objectCentre } from '../../src/demo/scenes.ts';
import { trackQA } from '../../src/demo/scene-answers.ts';
import { makeTinyCheckpoint } from '../lib/tiny-checkpoint.ts';
import { writtenPoints } from './attention-targets.ts';
import { DEMO_SPLITS, drillQuestions, sceneAt } from './curriculum.ts';
import { buildSamples, loadSampleContext, type SampleContext } from './samples.ts';

let dir: string;
let ctx: SampleContext;
beforeAll(async () => {
  dir = await mkdtemp(join(os.tmpdir(), 'attend-'));
  await makeTinyCheckpoint({ outDir: dir, size: 'demo', seed: 0 });
  ctx = await loadSampleContext(dir);
}, 120_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('attention targets of the demo training', () => {
  it('name the digits of each point and the image tokens over its shape', () => {
    const [scene, qas] = drillQuestions(DEMO_SPLITS.train, 3);
    const samples = buildSamples(ctx, scene, qas);
    samples.forEach((s, q) => {
      const points = writtenPoints(qas[q].answer, scene);
      expect(s.attend).toHaveLength(points.length);
      s.attend.forEach((t, k) => {
        // The tokens predicted from positions [from, to) spell "x y" of the k-th point.
        const predicted = ctx.tokenizer.decode([...s.inputIds.subarray(t.from + 1, t.to + 1)]);
        const p = points[k];
        expect(predicted).toBe(`${String(p.x).padStart(3, '0')} ${String(p.y).padStart(3, '0')}`);
        // Every target is an <im_patch> token, and the shape's centre is inside the area they cover.
        expect(t.keys.every((pos) => s.inputIds[pos] === ctx.config.tokens.imagePatch)).toBe(true);
        expect(t.keys.length).toBeGreaterThan(0);
        expect(t.keys.length).toBeLessThan(60);
      });
    });
  });

  it('on a clip, a track point reads only its own frame', () => {
    let i = 7;
    let scene = sceneAt(DEMO_SPLITS.train, i);
    const single = () => scene.objects.find((o) => scene.objects.filter((p) => p.colour === o.colour && p.shape === o.shape).length === 1);
    while (scene.kind !== 'clip' || !single()) scene = sceneAt(DEMO_SPLITS.train, (i += 10));
    const target = single()!;
    const [s] = buildSamples(ctx, scene, [trackQA(scene, target)]);
    expect(s.attend).toHaveLength(scene.frames);
    const patchPositions: number[] = [];
    s.inputIds.forEach((id, pos) => id === ctx.config.tokens.imagePatch && patchPositions.push(pos));
    const perFrame = patchPositions.length / scene.frames;
    s.attend.forEach((t, frame) => {
      const rows = t.keys.map((pos) => patchPositions.indexOf(pos));
      expect(rows.every((r) => Math.floor(r / perFrame) === frame)).toBe(true);
      // The object moved: its frame's targets differ from frame 0's unless it stood still.
      const moved = objectCentre(target, frame).x !== objectCentre(target, 0).x || objectCentre(target, frame).y !== objectCentre(target, 0).y;
      if (frame > 0 && moved) expect(rows.map((r) => r % perFrame)).not.toEqual(s.attend[0].keys.map((pos) => patchPositions.indexOf(pos) % perFrame));
    });
  });
});
