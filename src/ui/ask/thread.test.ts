import { describe, expect, it } from 'vitest';
import { exportResultJson, importResultJson } from '../../molmo2/export/result.ts';
import type { Run, RunStatus, ScopePlan } from '../../state/results-types.ts';
import { runResult, type RunQuery } from '../results/run-result.ts';
import { CLIP_INFO as info } from '../results/testing.ts';
import { followableRun, sameScope, threadHistory } from './thread.ts';

const frame3: ScopePlan = { kind: 'frame', mode: 'images', times: [0.3], frames: [3], clipStartS: 0, maxFrames: 1, label: 'frame 3' };
const range: ScopePlan = { kind: 'range', mode: 'video', times: [0.5, 1, 1.5], frames: [5, 10, 15], clipStartS: 0.5, maxFrames: 64, label: '3 frames' };

let next = 0;
function run(scope: ScopePlan, question: string, answer: string, status: RunStatus = 'done', history?: RunQuery['history']): Run {
  const query: RunQuery = { question, preset: 'ask', scope, model: { id: 'm', dtype: 'q4' }, maxNewTokens: 64, ...(history ? { history } : {}) };
  return { id: `r${++next}`, fingerprint: 'f', createdAt: '2026-12-06T00:00:00.000Z', question, preset: 'ask', scope, status, result: runResult(query, info, answer), visible: true };
}

describe('sameScope', () => {
  it('is true only for the same frames sent the same way', () => {
    expect(sameScope(range, { ...range, label: 'other words' })).toBe(true);
    expect(sameScope(range, { ...range, mode: 'images' })).toBe(false);
    expect(sameScope(range, { ...range, clipStartS: 0 })).toBe(false);
    expect(sameScope(range, { ...range, times: [0.5, 1, 1.6] })).toBe(false);
    expect(sameScope(range, { ...range, frames: [5, 10] })).toBe(false);
    expect(sameScope(frame3, { ...frame3, frames: [4] })).toBe(false);
  });
});

describe('followableRun', () => {
  it('takes the selected run when it qualifies, else the newest answered run of the same frames', () => {
    const a = run(range, 'Point to the cups.', 'Two cups.');
    const b = run(frame3, 'Point to the dog.', 'A dog.');
    const c = run(range, 'How many?', 'Three.');
    const failed = run(range, 'Track it.', '', 'error');
    const running = run(range, 'Track it.', 'partial', 'running');
    const runs = [a, b, c, failed, running];
    expect(followableRun(runs, range, null)?.id).toBe(c.id);
    expect(followableRun(runs, range, a.id)?.id).toBe(a.id);
    // The selected run is about other frames: the newest of these frames instead.
    expect(followableRun(runs, range, b.id)?.id).toBe(c.id);
    expect(followableRun(runs, frame3, null)?.id).toBe(b.id);
    expect(followableRun(runs, { ...frame3, frames: [4], times: [0.4] }, null)).toBeUndefined();
  });

  it('follows a stopped answer by its text, never an empty or failed one', () => {
    const stopped = run(range, 'Describe.', 'A man walks', 'cancelled');
    const empty = run(range, 'Describe.', '  ', 'cancelled');
    expect(followableRun([stopped, empty], range, empty.id)?.id).toBe(stopped.id);
    expect(followableRun([run(range, 'x', '', 'error')], range, null)).toBeUndefined();
  });
});

describe('threadHistory', () => {
  it('chains the earlier turns, then the run\'s question and the model text as generated', () => {
    const first = run(range, 'Point to the cups.', '<points coords="0.5 1 100 100">cups</points>');
    expect(threadHistory(first)).toEqual([{ question: 'Point to the cups.', answer: '<points coords="0.5 1 100 100">cups</points>' }]);
    const second = run(range, 'Now track the second one.', 'Done.', 'done', threadHistory(first));
    expect(threadHistory(second)).toEqual([
      { question: 'Point to the cups.', answer: '<points coords="0.5 1 100 100">cups</points>' },
      { question: 'Now track the second one.', answer: 'Done.' },
    ]);
  });

  it('is kept in the result file and read back; a bad turn is named', () => {
    const second = run(range, 'And now?', 'Still two.', 'done', [{ question: 'How many cups?', answer: 'Two.' }]);
    const text = exportResultJson(second.result, 'complete');
    const back = importResultJson(text);
    expect(back.ok && back.result.query.history).toEqual([{ question: 'How many cups?', answer: 'Two.' }]);
    const first = run(range, 'How many cups?', 'Two.');
    expect('history' in JSON.parse(exportResultJson(first.result, 'complete')).query).toBe(false);

    const bad = JSON.parse(text);
    bad.query.history = [{ question: 'How many cups?', answer: 2 }];
    const refused = importResultJson(JSON.stringify(bad));
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.errors.join('\n')).toContain('query.history[0].answer');
  });
});
