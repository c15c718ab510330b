import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildResult, exportResultJson, importResultJson, RESULT_STATUSES, type ResultPoint } from './result.ts';
import { trackingInput, trackingResult } from './test-fixture.ts';

/** What the model wrote before a group's points: the image index or the clip time. */
const keyOf = (p: ResultPoint) => (p.kind === 'image' ? p.image : p.clipTimeS);

/** A point as version 1 of the format wrote it. */
function asVersion1(p: ResultPoint) {
  const { trackId, label, tag, timeS, frame, xPx, yPx, xNorm, yNorm } = p;
  return { trackId, label, kind: tag, key: keyOf(p), timeS, frame, xPx, yPx, xNorm, yNorm };
}

describe('buildResult', () => {
  it('parses the answer and places every point on a sampled time and its decoded frame', () => {
    const r = trackingResult();
    expect(r.video.sampledFrames).toEqual([0, 15, 30, 45, 60, 75, 89]);
    expect(r.points.map((p) => [p.trackId, keyOf(p), p.timeS, p.frame, Math.round(p.xPx * 1e6) / 1e6, Math.round(p.yPx * 1e6) / 1e6])).toEqual([
      [1, 0, 0, 0, 128, 36],
      [1, 1, 1, 30, 160, 54],
      [2, 1, 1, 30, 384, 324],
      [1, 2, 2, 60, 192, 72],
      [2, 2, 2, 60, 416, 342],
      [1, 3, 2.9667, 89, 224, 90],
    ]);
    expect(r.points.every((p) => p.kind === 'video')).toBe(true);
    expect(r.points[0]).toMatchObject({ tag: 'tracks', xNorm: 0.2, yNorm: 0.1, label: `red, "fast" & 'small' cars\nline2` });
    expect(r.count).toBeNull();
    expect(r.warnings).toEqual([]);
    expect(r.rawText).toBe(trackingInput().rawText);
  });

  it('uses given frame timestamps (variable frame rate) over fps', () => {
    const input = trackingInput();
    const r = buildResult({ ...input, video: { ...input.video, fps: null, decodedFrameCount: 4, frameTimestampsS: [0, 0.9, 1.95, 2.5], sampledTimesS: [0, 1, 2] } });
    expect(r.video.sampledFrames).toEqual([0, 1, 2]);
    expect(r.points.filter((p) => p.trackId === 1).map((p) => [p.timeS, p.frame])).toEqual([
      [0, 0],
      [1, 1],
      [2, 2],
      [2, 2],
    ]);
    expect(r.warnings.join()).toMatch(/3 s is not one of the sampled times/);
  });

  it('maps the clip times of a range (keys from the range start) to video times and frames', () => {
    const input = trackingInput();
    // The same answer about a clip that starts 10 s into a 30 fps video.
    const start = 10;
    const r = buildResult({
      ...input,
      video: { ...input.video, durationS: 13, decodedFrameCount: 390, sampledTimesS: input.video.sampledTimesS.map((t) => t + start) },
      query: { ...input.query, clipStartS: start },
    });
    expect(r.warnings).toEqual([]);
    expect(r.points.filter((p) => p.trackId === 1).map((p) => [keyOf(p), p.timeS, p.frame])).toEqual([
      [0, 10, 300],
      [1, 11, 330],
      [2, 12, 360],
      [3, 12.9667, 389],
    ]);
    const back = importResultJson(exportResultJson(r, 'complete'));
    expect(back.ok && back.result.query.clipStartS).toBe(start);
  });

  it('in images mode maps image k to the k-th sampled frame, with the count sentence', () => {
    const r = buildResult(
      trackingInput({
        query: { text: 'How many cups?', task: 'count', mode: 'images' },
        rawText: 'There are 3 <points coords="1 1 100 100;3 2 500 500 3 900 900">cups</points>.',
      }),
    );
    expect(r.count).toBe(3);
    expect(r.points.every((p) => p.kind === 'image')).toBe(true);
    expect(r.points.map((p) => [keyOf(p), p.trackId, p.timeS, p.frame])).toEqual([
      [1, 1, 0, 0],
      [3, 2, 1, 30],
      [3, 3, 1, 30],
    ]);
  });
});

describe('native JSON', () => {
  it('round-trips losslessly, with the status it was written with', () => {
    const r = trackingResult();
    for (const status of RESULT_STATUSES) expect(importResultJson(exportResultJson(r, status))).toEqual({ ok: true, result: { ...r, status } });
  });

  it('says how the run ended right after the format, and refuses a file of this version without it', () => {
    const text = exportResultJson(trackingResult(), 'cancelled');
    expect(Object.keys(JSON.parse(text)).slice(0, 4)).toEqual(['format', 'version', 'createdAt', 'status']);
    const file = JSON.parse(text);
    delete file.status;
    expect(importResultJson(JSON.stringify(file))).toEqual({ ok: false, errors: ['status: expected one of complete, cancelled, failed, edited, found nothing'] });
    expect(importResultJson(JSON.stringify({ ...file, status: 'done' }))).toEqual({ ok: false, errors: ['status: expected one of complete, cancelled, failed, edited, found "done"'] });
  });

  it('reads a version 2 file, which has no status, as it was', () => {
    const { status, ...v2 } = { ...JSON.parse(exportResultJson(trackingResult(), 'complete')), version: 2 };
    expect(status).toBe('complete');
    expect(importResultJson(JSON.stringify(v2))).toEqual({ ok: true, result: trackingResult() });
  });

  it('gives clear errors for files it cannot read', () => {
    expect(importResultJson('{')).toMatchObject({ ok: false, errors: [expect.stringMatching(/^not JSON/)] });
    expect(importResultJson('[]')).toEqual({ ok: false, errors: ['the file: expected an object, found []'] });
    expect(importResultJson('{"format":"other"}')).toEqual({ ok: false, errors: ['format: expected "molmo2-web-result", found "other"'] });
    expect(importResultJson('{"format":"molmo2-web-result","version":9}')).toMatchObject({ ok: false, errors: [expect.stringMatching(/reads versions 1 to 4, the file has 9/)] });

    const broken = JSON.parse(exportResultJson(trackingResult(), 'complete'));
    broken.points[2].xPx = '384';
    delete broken.model.dtype;
    broken.query.task = 'dance';
    broken.video.sampledFrames.pop();
    const out = importResultJson(JSON.stringify(broken));
    expect(out.ok).toBe(false);
    if (!out.ok) {
      expect(out.errors).toEqual([
        'model.dtype: expected text, found nothing',
        'video.sampledFrames: expected one frame per sampled time',
        'query.task: expected one of point, track, count, other, found "dance"',
        'points[2].xPx: expected a number, found "384"',
      ]);
    }
  });

  it('writes version 4, each point saying whether it is on an image or a video', () => {
    const file = JSON.parse(exportResultJson(trackingResult(), 'complete'));
    expect(file.version).toBe(4);
    expect(file.points[0]).toMatchObject({ kind: 'video', clipTimeS: 0, tag: 'tracks' });
    expect(file.points[0]).not.toHaveProperty('key');
  });

  it('reads version 1 files as today\'s: the key becomes a clip time or an image index', () => {
    const video = trackingResult();
    const images = buildResult(trackingInput({ query: { text: 'How many cups?', task: 'count', mode: 'images' }, rawText: 'There are 2 <points coords="1 1 100 100;3 2 500 500">cups</points>.' }));
    for (const r of [video, images]) {
      // The same result as version 1 wrote it: `key` for the image index or clip time, `kind` for the tag.
      const v1 = { ...r, version: 1, points: r.points.map(asVersion1) };
      expect(JSON.stringify(v1)).not.toMatch(/clipTimeS|"image"|"tag"/);
      expect(importResultJson(JSON.stringify(v1))).toEqual({ ok: true, result: r });
    }
    expect(images.points.map((p) => (p.kind === 'image' ? p.image : NaN))).toEqual([1, 3]);
  });

  it('names the version 1 field that is wrong, and a point of the wrong kind', () => {
    const { status: _, ...current } = JSON.parse(exportResultJson(trackingResult(), 'complete'));
    const v1 = { ...current, version: 1 };
    v1.points = v1.points.map(asVersion1);
    v1.points[1].key = 'soon';
    expect(importResultJson(JSON.stringify(v1))).toEqual({ ok: false, errors: ['points[1].key: expected a number, found "soon"'] });

    const v2 = JSON.parse(exportResultJson(trackingResult(), 'complete'));
    v2.points[0] = { ...v2.points[0], kind: 'image', image: 1 };
    delete v2.points[0].clipTimeS;
    expect(importResultJson(JSON.stringify(v2))).toEqual({ ok: false, errors: ['points[0].kind: expected one of video, found "image"'] });
  });

  it('never throws on arbitrary JSON or text (fixed seed)', () => {
    const valid = JSON.parse(exportResultJson(trackingResult(), 'failed'));
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.jsonValue().map((v) => JSON.stringify(v))), fc.oneof(
          fc.constantFrom(['app', 'name'], ['points', '0', 'xPx'], ['points', '1'], ['points'], ['video', 'sampledTimesS'], ['video', 'fps'], ['warnings', '0'], ['timingMs', 'x'], ['count'], ['query'], ['query', 'mode'], ['status'], ['version']),
          fc.array(fc.string(), { maxLength: 3 }),
        ),
        fc.jsonValue(), (text, path, value) => {
        expect(() => importResultJson(text)).not.toThrow();
        // The valid file with one field replaced by anything.
        const copy = structuredClone(valid);
        let at = copy;
        for (const k of path.slice(0, -1)) at = at && typeof at === 'object' ? at[k] : undefined;
        if (at && typeof at === 'object' && path.length) at[path[path.length - 1]] = value;
        expect(() => importResultJson(JSON.stringify(copy))).not.toThrow();
      }),
      { seed: 5150, numRuns: 200 },
    );
  });
});
