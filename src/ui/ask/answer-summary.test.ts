import { describe, expect, it } from 'vitest';
import { CLIP_INFO as info } from '../results/testing.ts';
import { runResult, type RunQuery } from '../results/run-result.ts';
import { answerSummary } from './answer-summary.ts';


const frame: RunQuery = {
  question: 'Point to the cups.',
  preset: 'point',
  scope: { kind: 'frame', mode: 'images', times: [1], frames: [10], clipStartS: 0, maxFrames: 64, label: 'frame 10' },
  model: { id: 'm', dtype: 'q4' },
  maxNewTokens: 100,
};
const range: RunQuery = {
  ...frame,
  question: 'Track the car.',
  preset: 'track',
  scope: { kind: 'range', mode: 'video', times: [0.5, 1, 1.5], frames: [5, 10, 15], clipStartS: 0.5, maxFrames: 64, label: '3 frames' },
};

const summary = (q: RunQuery, text: string) => answerSummary(runResult(q, info, text));

describe('answerSummary', () => {
  it('says how many points, of what and when, and lists each in pixels', () => {
    const s = summary(frame, '<points coords="1 1 500 500 2 250 750">cups</points>');
    expect(s?.headline).toBe('2 points: cups at 00:01.000 (frame 10)');
    expect(s?.points).toEqual([
      { trackId: 1, label: 'cups', frame: 10, time: '00:01.000', x: 160, y: 120 },
      { trackId: 2, label: 'cups', frame: 10, time: '00:01.000', x: 80, y: 180 },
    ]);
  });

  it('puts the stated count first', () => {
    expect(summary({ ...frame, preset: 'count' }, 'Counting the <points coords="1 1 500 500">boxes</points> shows a total of 1.')?.headline).toBe(
      'Count: 1 · 1 point: boxes at 00:01.000 (frame 10)',
    );
    expect(summary({ ...frame, preset: 'count' }, 'There are 3 boxes.')?.headline).toBe('Count: 3');
  });

  it('counts tracks, not points, over the times they were seen', () => {
    const s = summary(range, '<tracks coords="0.0 1 500 500 2 100 100;0.5 1 510 500;1.0 2 120 100">car</tracks>');
    expect(s?.headline).toBe('2 tracks: car over 00:00.500–00:01.500 (3 frames)');
    expect(s?.points.map((p) => p.frame)).toEqual([5, 5, 10, 15]);
  });

  it('leaves an answer without points or a count as text', () => {
    expect(summary({ ...frame, preset: 'describe' }, 'A white box on a test pattern.')).toBeUndefined();
  });
});
