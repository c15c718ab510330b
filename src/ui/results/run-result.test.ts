import { describe, expect, it } from 'vitest';
import { CLIP_INFO as info } from './testing.ts';
import { RunAnswer, runResult, type RunQuery } from './run-result.ts';


const query: RunQuery = {
  question: 'Track the box.',
  preset: 'track',
  scope: { kind: 'range', mode: 'video', times: [0.5, 1, 1.5], frames: [5, 10, 15], clipStartS: 0.5, maxFrames: 64, label: '3 frames' },
  model: { id: 'm', dtype: 'q4' },
  maxNewTokens: 100,
};

const ANSWER = 'Counting the <tracks coords="0.0 1 100 200 2 300 400;0.5 1 150 250;1.0 2 350 450">box</tracks> shows a total of 2.';
const createdAt = '2026-12-06T00:00:00.000Z';

describe('RunAnswer', () => {
  it('gives, token by token, the result of the text so far, and the whole-text result at the end', () => {
    const answer = new RunAnswer(query, info, createdAt);
    let text = '';
    let rebuilt = 0;
    let previous = answer.result;
    for (let at = 0; at < ANSWER.length; at += 3) {
      text = ANSWER.slice(0, at + 3);
      const result = answer.update(text);
      expect(result.rawText).toBe(text);
      if (result.points !== previous.points) rebuilt++;
      previous = result;
    }
    // The points list was replaced only when points or labels changed, not on every token.
    expect(rebuilt).toBeGreaterThan(0);
    expect(rebuilt).toBeLessThan(ANSWER.length / 3 / 2);
    const whole = runResult(query, info, ANSWER, {}, createdAt);
    expect(answer.result).toEqual(whole);
    expect(whole.points.map((p) => [p.trackId, p.kind === 'video' && p.clipTimeS, p.frame])).toEqual([
      [1, 0, 5],
      [2, 0, 5],
      [1, 0.5, 10],
      [2, 1, 15],
    ]);
  });

  it('reads a text that came back shorter (replaced, not extended) again from the start', () => {
    const answer = new RunAnswer(query, info, createdAt);
    expect(answer.update(ANSWER).points).toHaveLength(4);
    const other = '<tracks coords="0.5 2 500 500">x</tracks>';
    expect(answer.update(other)).toEqual(runResult(query, info, other, {}, createdAt));
    expect(answer.update(`${other} There is 1.`)).toEqual(runResult(query, info, `${other} There is 1.`, {}, createdAt));
  });
});
