import { describe, expect, it } from 'vitest';
import { addPoint, deletePoint, movePoint, nextTrackId, pointIndexAt, revertEdits, sampleAt, type EditOutcome } from './edits.ts';
import { buildResult, exportResultJson, importResultJson, type ResultJson } from './result.ts';
import { exportCsv } from './csv.ts';
import { trackingInput, trackingResult } from './test-fixture.ts';

// trackingResult: 640×360, sampled frames 0, 15, 30, 45, 60, 75, 89; object 1 on 0, 30, 60, 89; object 2 on 30, 60.
const ok = (out: EditOutcome): ResultJson => {
  if (!out.ok) throw new Error(out.message);
  return out.result;
};
const at = (r: ResultJson, id: number, frame: number) => r.points[pointIndexAt(r, id, frame)];

describe('edits', () => {
  it('moves a point, keeping the model\'s points as the original', () => {
    const model = trackingResult();
    const r = ok(movePoint(model, 2, 30, { x: 100, y: 50 }));
    expect(at(r, 2, 30)).toMatchObject({ xPx: 100, yPx: 50, xNorm: 100 / 640, yNorm: 50 / 360, timeS: 1, clipTimeS: 1 });
    expect(r.status).toBe('edited');
    expect(r.original).toEqual({ points: model.points, count: null });
    expect(r.points.filter((p) => p !== at(r, 2, 30))).toEqual(model.points.filter((p) => p !== at(model, 2, 30)));
    // A second edit keeps the first original, not the once-corrected points.
    const again = ok(movePoint(r, 1, 0, { x: 1, y: 2 }));
    expect(again.original).toEqual(r.original);
    expect(model.original).toBeUndefined();
  });

  it('keeps a moved point inside the frame', () => {
    const r = ok(movePoint(trackingResult(), 1, 0, { x: -20, y: 999 }));
    expect(at(r, 1, 0)).toMatchObject({ xPx: 0, yPx: 360, xNorm: 0, yNorm: 1 });
  });

  it('deletes a point; the count becomes that of the corrected points', () => {
    const counted = { ...trackingResult(), count: 5 };
    const r = ok(deletePoint(counted, 2, 60));
    expect(r.points).toHaveLength(5);
    expect(pointIndexAt(r, 2, 60)).toBe(-1);
    expect(r.count).toBeNull();
    expect(r.original?.count).toBe(5);
  });

  it('adds a point on a sampled frame to a track or a new one, in time order, with its clip time', () => {
    const input = trackingInput();
    // The clip starts 10 s into the video: clip time = video time − 10.
    const model = buildResult({ ...input, video: { ...input.video, durationS: 13, decodedFrameCount: 390, sampledTimesS: input.video.sampledTimesS.map((t) => t + 10) }, query: { ...input.query, clipStartS: 10 } });
    const frame = model.video.sampledFrames[3]; // video 11.5 s
    const toOne = addPoint(model, frame, 1, { x: 320, y: 180 });
    expect(toOne).toMatchObject({ ok: true, trackId: 1 });
    const r = ok(toOne);
    const added = at(r, 1, frame);
    expect(added).toMatchObject({ kind: 'video', clipTimeS: 1.5, timeS: 11.5, frame, tag: 'tracks', label: model.points[0].label, xNorm: 0.5, yNorm: 0.5 });
    expect(r.points.map((p) => p.timeS)).toEqual([...r.points.map((p) => p.timeS)].sort((a, b) => a - b));
    expect(r.points.indexOf(added)).toBe(3);

    const fresh = addPoint(r, frame, 'new', { x: 10, y: 10 });
    expect(fresh).toMatchObject({ ok: true, trackId: 3 });
    expect(nextTrackId(ok(fresh))).toBe(4);
  });

  it('refuses a point off the sampled frames, and a second point of one object on a frame, with a message', () => {
    const model = trackingResult();
    expect(sampleAt(model, 31)).toBe(-1);
    expect(addPoint(model, 31, 1, { x: 1, y: 1 })).toEqual({ ok: false, message: expect.stringMatching(/^Frame 32 was not sent to the model: .* 7 sampled frames/) });
    expect(addPoint(model, 30, 2, { x: 1, y: 1 })).toEqual({ ok: false, message: 'Object #2 already has a point on frame 31: drag it instead.' });
    expect(movePoint(model, 2, 0, { x: 1, y: 1 })).toEqual({ ok: false, message: 'Object #2 has no point on frame 1.' });
    expect(deletePoint(model, 9, 0)).toMatchObject({ ok: false });
  });

  it('adds to a question sent as images: the image index is the sampled frame\'s', () => {
    const images = buildResult(trackingInput({ query: { text: 'How many cups?', task: 'count', mode: 'images' }, rawText: 'There are 2 <points coords="1 1 100 100;3 2 500 500">cups</points>.' }));
    const r = ok(addPoint(images, images.video.sampledFrames[1], 'new', { x: 64, y: 36 }));
    expect(at(r, 3, 15)).toMatchObject({ kind: 'image', image: 2, timeS: 0.5, label: 'cups', tag: 'points' });
    expect(r.count).toBeNull();
    expect(r.original?.count).toBe(2);
  });

  it('reverts to the model\'s answer', () => {
    const model = trackingResult();
    const r = ok(deletePoint(ok(movePoint(model, 1, 0, { x: 5, y: 5 })), 2, 30));
    expect(revertEdits(r)).toEqual(model);
  });
});

describe('an edited result file (version 4)', () => {
  const edited = () => ok(addPoint(ok(deletePoint(ok(movePoint(trackingResult(), 1, 30, { x: 111, y: 99 })), 2, 60)), 45, 2, { x: 300, y: 200 }));

  it('holds the corrected points, the model\'s original, and says edited whatever status it is given', () => {
    const r = edited();
    const file = JSON.parse(exportResultJson(r, 'complete'));
    expect(file).toMatchObject({ version: 4, status: 'edited' });
    expect(file.points).toEqual(r.points);
    expect(file.original).toEqual({ points: trackingResult().points, count: null });
    expect(importResultJson(exportResultJson(r, 'complete'))).toEqual({ ok: true, result: r });
    // Every export writes the corrected points.
    const rows = exportCsv(r).trim().split('\r\n');
    expect(rows).toHaveLength(1 + r.points.length);
    expect(rows.filter((row) => row.includes(',30,1,111,99,'))).toHaveLength(1);
    expect(rows.filter((row) => row.includes(',45,1.5,300,200,'))).toHaveLength(1);
  });

  it('refuses a broken original, and an original in a file that does not say it was edited', () => {
    const file = JSON.parse(exportResultJson(edited(), 'complete'));
    file.original.points[0].yPx = null;
    file.original.count = 'many';
    expect(importResultJson(JSON.stringify(file))).toEqual({ ok: false, errors: ['original.points[0].yPx: expected a number, found null', 'original.count: expected a number, found "many"'] });
    const unsaid = { ...JSON.parse(exportResultJson(edited(), 'complete')), status: 'complete' };
    expect(importResultJson(JSON.stringify(unsaid))).toEqual({ ok: false, errors: ["status: expected edited (the file keeps the model's original points), found \"complete\""] });
  });

  it('still reads a version 3 file as it was', () => {
    const v3 = { ...JSON.parse(exportResultJson(trackingResult(), 'cancelled')), version: 3 };
    expect(importResultJson(JSON.stringify(v3))).toEqual({ ok: true, result: { ...trackingResult(), status: 'cancelled' } });
  });
});
