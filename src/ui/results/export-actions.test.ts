import { describe, expect, it } from 'vitest';
import { buildResult, importResultJson } from '../../molmo2/export/result.ts';
import { trackingInput, trackingResult } from '../../molmo2/export/test-fixture.ts';
import type { Run, RunStatus } from '../../state/results-types.ts';
import type { VideoInfo } from '../../../workers/decode-api.ts';
import { emptyExportMessage, EXPORT_FORMATS, exportFile, fileStatus } from './export-actions.ts';

function run(status: RunStatus, result = trackingResult()): Run {
  return {
    id: 'r1',
    fingerprint: 'f',
    createdAt: result.createdAt,
    question: 'Track the cars.',
    preset: 'track',
    scope: { kind: 'range', mode: 'video', times: result.video.sampledTimesS, frames: result.video.sampledFrames, clipStartS: 0, maxFrames: 64, label: 'range' },
    status,
    result,
    visible: true,
  };
}

const info = { width: 640, height: 360 } as VideoInfo;
const noPoints = buildResult(trackingInput({ rawText: 'I see no cars.' }));

describe('fileStatus', () => {
  it("says how the run ended, as the result file's words; nothing while it runs", () => {
    expect((['done', 'cancelled', 'error', 'running'] as const).map((s) => fileStatus(run(s)))).toEqual(['complete', 'cancelled', 'failed', null]);
    expect(fileStatus(run('done', { ...trackingResult(), status: 'edited' }))).toBe('edited');
  });
});

describe('exportFile', () => {
  it("writes the run's status into its JSON file", async () => {
    for (const [status, expected] of [['done', 'complete'], ['cancelled', 'cancelled'], ['error', 'failed']] as const) {
      const f = exportFile(run(status), 'json', info);
      expect(f.name).toBe('street-day-1-track-the-cars.json');
      const back = importResultJson(await f.blob.text());
      expect(back.ok && back.result.status).toBe(expected);
    }
    expect(() => exportFile(run('running'), 'json', info)).toThrow(/still running/);
  });
});

describe('emptyExportMessage', () => {
  it('refuses every point format for a run without points, naming the run and the format; JSON is always written', () => {
    for (const f of EXPORT_FORMATS) {
      const message = emptyExportMessage(run('done', noPoints), f.id);
      if (f.id === 'json') expect(message).toBeNull();
      else expect(message).toBe(`“Track the cars.” has no points, so its ${f.name} file would be empty; nothing was saved. JSON keeps the answer's text.`);
      expect(emptyExportMessage(run('done'), f.id)).toBeNull();
    }
  });

  it('refuses MOT when no point has a known frame (MOT lines need one)', () => {
    const r = trackingResult();
    const unplaced = { ...r, points: r.points.map((p) => ({ ...p, frame: -1 })) };
    expect(emptyExportMessage(run('done', unplaced), 'mot')).toMatch(/has no points on a known frame, so its MOT file would be empty/);
    expect(emptyExportMessage(run('done', unplaced), 'csv')).toBeNull();
  });
});
