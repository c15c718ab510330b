import { describe, expect, it } from 'vitest';
import { presentedFrameIndex, sampleTimes } from '../molmo2/video.ts';
import { SAMPLE_INDEX, SAMPLE_SEED, movingObject, sampleClip, sampleFrameAt, sampleTruthAt } from './sample-clip.ts';
import { trackQA } from './scene-answers.ts';
import { makeClipScene, objectCentre } from './scenes.ts';
import { scoreTrack, scoreTrackPoints } from './scoring.ts';

describe('the "Try a sample" clip', () => {
  const sample = sampleClip();
  const { scene, mover } = sample;

  it('is a test-split clip whose farthest-moving shape is the only one of its colour and shape', () => {
    expect(SAMPLE_SEED).toBe(4);
    expect(scene).toEqual(makeClipScene(SAMPLE_SEED, SAMPLE_INDEX));
    expect(scene.frames).toBe(6);
    expect(scene.fps).toBe(2);
    expect(scene.objects.filter((o) => o.colour === mover.colour && o.shape === mover.shape)).toHaveLength(1);
    const travel = (o: (typeof scene.objects)[number]) => Math.hypot(o.path[5].x - o.path[0].x, o.path[5].y - o.path[0].y);
    for (const o of scene.objects) if (o !== mover) expect(travel(o)).toBeLessThan(travel(mover));
    expect(travel(mover)).toBeGreaterThan(0.4 * Math.min(scene.width, scene.height));
    expect(movingObject(scene)).toBe(mover);
  });

  it('asks the Track question exactly as the demo was trained to answer it', () => {
    const qa = trackQA(scene, sample.target);
    expect(sample.question).toBe(qa.question);
    expect(sample.question).toBe('Track the yellow circle.');
    expect(sample.answer).toBe(qa.answer);
  });

  it("is timed so that the app's sampler sends each scene frame once, at the times the model trained on", () => {
    // Frame k is a still from k/2 s for 0.5 s; the range is first frame to last frame, 0–2.5 s.
    expect(sample.frames.map((f) => f.timeS)).toEqual([0, 0.5, 1, 1.5, 2, 2.5]);
    expect(sample.frames.every((f) => f.durationS === 0.5)).toBe(true);
    expect(sample.range).toEqual({ start: 0, end: 2.5 });
    const times = sampleTimes(sample.range.end - sample.range.start, { maxFrames: 64 });
    expect(times).toEqual([0, 0.5, 1, 1.5, 2, 2.5]);
    const frameTimes = sample.frames.map((f) => f.timeS);
    expect(times.map((t) => presentedFrameIndex(t, frameTimes))).toEqual([0, 1, 2, 3, 4, 5]);
    expect(times.map((t) => sampleFrameAt(sample, t))).toEqual([0, 1, 2, 3, 4, 5]);
    // The whole duration (3 s) would append 3.0 s: frame 5 sent twice, as a seventh frame.
    expect(sampleTimes(3, { maxFrames: 64 }).map((t) => sampleFrameAt(sample, t))).toEqual([0, 1, 2, 3, 4, 5, 5]);
  });

  it('gives the ground truth at every sampled time, within a still and at its edges', () => {
    for (let k = 0; k < scene.frames; k++) {
      expect(sampleTruthAt(sample, k / 2)).toEqual(objectCentre(mover, k));
      expect(sampleTruthAt(sample, k / 2 + 0.49)).toEqual(objectCentre(mover, k));
      expect(sampleTruthAt(sample, k / 2 - 1e-7)).toEqual(objectCentre(mover, k));
    }
    expect(sampleFrameAt(sample, 99)).toBe(5);
    expect(sampleFrameAt(sample, -1)).toBe(0);
  });

  it('scores drawn points like the answer they come from', () => {
    const truthPoints = sample.frames.map((f) => ({ clipTimeS: f.timeS, ...sampleTruthAt(sample, f.timeS) }));
    expect(scoreTrackPoints(scene, sample.target, truthPoints).errorsPx).toEqual([0, 0, 0, 0, 0, 0]);
    const shifted = truthPoints.map((p) => ({ ...p, x: p.x + 3, y: p.y - 4 }));
    for (const e of scoreTrackPoints(scene, sample.target, shifted).errorsPx) expect(e).toBeCloseTo(5, 9);
    expect(scoreTrackPoints(scene, sample.target, truthPoints.slice(0, 4)).errorsPx.slice(4)).toEqual([null, null]);
    // The perfect answer, parsed, is within the 0–1000 grid's rounding.
    for (const e of scoreTrack(scene, sample.target, sample.answer).errorsPx) expect(e!).toBeLessThanOrEqual((Math.SQRT2 * scene.width) / 2000 + 1e-9);
  });
});
