// Every export read back by a parser this project did not write (csv-parse for CSV and MOT,
// fast-xml-parser for CVAT XML) and checked against the published format documents field by field:
// - CVAT for video 1.1: https://docs.cvat.ai/docs/other/xml_format/ (section "Interpolation")
// - COCO keypoints: https://cocodataset.org/#format-data (sections "Data format" and "2. Keypoint Detection")
// - MOT Challenge: https://motchallenge.net/instructions/ (fields frame, id, bb_left, bb_top, bb_width, bb_height, conf, x, y, z)
import { parse as parseCsv } from 'csv-parse/sync';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { buildResult, type ResultJson } from './result.ts';
import { CSV_COLUMNS, exportCsv } from './csv.ts';
import { exportCvatVideo } from './cvat.ts';
import { exportCocoKeypoints } from './coco.ts';
import { exportMot } from './mot.ts';
import { trackingInput, trackingResult } from './test-fixture.ts';

/** The fixture (two tracks with a gap and an end, a label with comma, quotes, & and a newline) and a points answer. */
const results = (): [string, ResultJson][] => [
  ['tracks', trackingResult()],
  [
    'points',
    buildResult(
      trackingInput({
        query: { text: 'Point to the "cups", all of them', task: 'point', mode: 'video' },
        rawText: '<points coords="0.5 1 100 100 2 900 500;2.0 3 10 990">cups &amp; mugs</points>',
      }),
    ),
  ],
];

describe('CSV read by csv-parse (strict RFC 4180)', () => {
  it.each(results())('%s: header, one record per point, every value as written', (_, result) => {
    const text = exportCsv(result);
    const records: string[][] = parseCsv(text, { record_delimiter: '\r\n', relax_quotes: false, relax_column_count: false, skip_empty_lines: false });
    expect(records[0]).toEqual([...CSV_COLUMNS]);
    const rows = records.slice(1).map((r) => Object.fromEntries(CSV_COLUMNS.map((c, i) => [c, r[i]])));
    expect(rows).toHaveLength(result.points.length);
    expect(result.points.length).toBeGreaterThan(0);
    const sorted = [...result.points].sort((a, b) => a.timeS - b.timeS || a.trackId - b.trackId);
    rows.forEach((row, i) => {
      const p = sorted[i];
      expect(row.video).toBe(result.video.name);
      expect(row.query).toBe(result.query.text);
      expect(Number(row.track_id)).toBe(p.trackId);
      expect(row.label).toBe(p.label ?? '');
      expect(Number(row.frame)).toBe(p.frame);
      expect(Number(row.time_s)).toBe(p.timeS);
      expect(Number(row.x_px)).toBe(p.xPx);
      expect(Number(row.y_px)).toBe(p.yPx);
      expect(Number(row.x_norm)).toBe(p.xNorm);
      expect(Number(row.y_norm)).toBe(p.yNorm);
      expect(row.source).toBe('model');
    });
  });

  it('keeps a label with a comma, quotes and a line break in one field', () => {
    const result = trackingResult();
    const label = result.points[0].label!;
    expect(label).toMatch(/,.*".*\n/s);
    const records: string[][] = parseCsv(exportCsv(result), { record_delimiter: '\r\n' });
    expect(records.slice(1).every((r) => r.length === CSV_COLUMNS.length && r[3] === label)).toBe(true);
  });
});

describe('CVAT for video 1.1 read by fast-xml-parser', () => {
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '',
    parseAttributeValue: false,
    parseTagValue: false,
    htmlEntities: true,
    isArray: (name, _path, _leaf, isAttribute) => !isAttribute && ['label', 'track', 'points'].includes(name),
  });
  type Shape = Record<'frame' | 'outside' | 'occluded' | 'keyframe' | 'points' | 'z_order', string>;
  type Track = { id: string; label: string; source: string; points: Shape[] };

  it.each(results())('%s: the document follows the published structure field by field', (_, result) => {
    const xml = exportCvatVideo(result);
    expect(XMLValidator.validate(xml)).toBe(true);
    expect(xml.startsWith('<?xml version="1.0" encoding="utf-8"?>')).toBe(true);
    const doc = parser.parse(xml);
    const root = doc.annotations;
    expect(Object.keys(doc).filter((k) => k !== '?xml')).toEqual(['annotations']);
    expect(root.version).toBe('1.1');

    // meta > task: the fields the format defines that apply to an export with no CVAT server behind it.
    const task = root.meta.task;
    expect(task.name).toBe(`${result.video.name}: ${result.query.text}`);
    expect(task.size).toBe(String(result.video.decodedFrameCount));
    expect(task.mode).toBe('interpolation'); // video tasks
    expect(task.start_frame).toBe('0');
    expect(task.stop_frame).toBe(String(result.video.decodedFrameCount - 1));
    expect(task.original_size).toEqual({ width: String(result.video.width), height: String(result.video.height) });
    const labels: { name: string; type: string }[] = task.labels.label;
    const labelNames = labels.map((l) => l.name);
    expect(new Set(labelNames).size).toBe(labelNames.length);
    // <type> is one of: any, bbox, cuboid, ellipse, mask, polygon, polyline, points, skeleton, tag.
    for (const l of labels) expect(l.type).toBe('points');
    expect(root.meta.source).toBe(result.video.name);

    // <track id label source> holding <points frame outside occluded keyframe points z_order>.
    const tracks: Track[] = root.track;
    expect(new Set(tracks.map((t) => t.id)).size).toBe(tracks.length);
    const objects = new Set(result.points.map((p) => `${p.trackId}/${p.label ?? 'object'}`));
    expect(tracks).toHaveLength(objects.size);
    for (const t of tracks) {
      expect(t.id).toMatch(/^\d+$/);
      expect(labelNames).toContain(t.label);
      expect(['manual', 'auto', 'semi-auto', 'file']).toContain(t.source);
      const frames = t.points.map((s) => Number(s.frame));
      expect(frames).toEqual([...frames].sort((a, b) => a - b));
      expect(new Set(frames).size).toBe(frames.length); // one shape per frame
      for (const s of t.points) {
        expect(Object.keys(s).sort()).toEqual(['frame', 'keyframe', 'occluded', 'outside', 'points', 'z_order']);
        expect(Number(s.frame)).toBeGreaterThanOrEqual(0);
        expect(Number(s.frame)).toBeLessThan(result.video.decodedFrameCount);
        for (const flag of [s.outside, s.occluded, s.keyframe]) expect(['0', '1']).toContain(flag);
        expect(s.z_order).toMatch(/^-?\d+$/);
        // points="x1,y1;x2,y2;…" in pixels: a point track has one point per shape.
        expect(s.points).toMatch(/^-?\d+(\.\d+)?,-?\d+(\.\d+)?$/);
        const [x, y] = s.points.split(',').map(Number);
        expect(x).toBeGreaterThanOrEqual(0);
        expect(x).toBeLessThanOrEqual(result.video.width);
        expect(y).toBeGreaterThanOrEqual(0);
        expect(y).toBeLessThanOrEqual(result.video.height);
      }
    }

    // Every model point is a visible keyframe of its object's track, at its frame and position.
    const trackOfObject = new Map<number, Track>();
    for (const p of result.points) {
      const at = (s: Shape) => {
        const [x, y] = s.points.split(',').map(Number);
        return Number(s.frame) === p.frame && s.outside === '0' && s.keyframe === '1' && Math.abs(x - p.xPx) <= 0.005 && Math.abs(y - p.yPx) <= 0.005;
      };
      const t = tracks.find((x) => x.label === (p.label ?? 'object') && x.points.some(at));
      expect(t, `point of object ${p.trackId} at frame ${p.frame}`).toBeDefined();
      // All points of one object are on one track, and each track holds one object.
      expect(trackOfObject.get(p.trackId) ?? t).toBe(t);
      trackOfObject.set(p.trackId, t!);
    }
    expect(new Set(trackOfObject.values()).size).toBe(trackOfObject.size);
    // Visible shapes are exactly the model's points.
    const visible = tracks.reduce((n, t) => n + t.points.filter((s) => s.outside === '0').length, 0);
    expect(visible).toBe(new Set(result.points.map((p) => `${p.trackId}/${p.label}/${p.frame}`)).size);
  });

  it('ends a track and bridges a gap with outside keyframes', () => {
    const result = trackingResult();
    const tracks: Track[] = parser.parse(exportCvatVideo(result)).annotations.track;
    const { sampledFrames } = result.video;
    for (const t of tracks) {
      const last = t.points.at(-1)!;
      // The track does not run on past its last point: it ends outside, unless that point is on the last sampled frame.
      if (Number(last.frame) !== sampledFrames.at(-1)) expect(last.outside).toBe('1');
    }
    // Object 1 is missing at 0.5 s and 1.5 s: those sampled frames hold outside shapes.
    const one = tracks.find((t) => t.points.some((s) => Number(s.frame) === 0 && s.outside === '0'))!;
    for (const at of [1, 3]) expect(one.points.find((s) => Number(s.frame) === sampledFrames[at])?.outside).toBe('1');
  });

  it('reads back the task name and labels with XML special characters exactly', () => {
    const result = trackingResult();
    const task = parser.parse(exportCvatVideo(result)).annotations.meta.task;
    expect(task.name).toBe(`${result.video.name}: ${result.query.text}`);
    expect(task.labels.label.map((l: { name: string }) => l.name)).toEqual([...new Set(result.points.map((p) => p.label))]);
  });
});

describe('COCO keypoints against the published data format', () => {
  const isInt = (v: unknown) => Number.isInteger(v);
  const isNum = (v: unknown) => typeof v === 'number' && Number.isFinite(v);

  it.each(results())('%s: every field of the published format, with its types and ranges', (_, result) => {
    // Through JSON text, as a reader gets it.
    const coco = JSON.parse(JSON.stringify(exportCocoKeypoints(result)));
    for (const key of ['info', 'licenses', 'images', 'annotations', 'categories']) expect(coco, key).toHaveProperty(key);

    // info{year: int, version: str, description: str, contributor: str, url: str, date_created: datetime}
    expect(isInt(coco.info.year)).toBe(true);
    for (const key of ['version', 'description', 'contributor', 'url']) expect(typeof coco.info[key], key).toBe('string');
    expect(Number.isNaN(Date.parse(coco.info.date_created))).toBe(false);

    // license{id: int, name: str, url: str}
    const licenseIds = new Set<number>();
    for (const l of coco.licenses) {
      expect(isInt(l.id)).toBe(true);
      expect(typeof l.name).toBe('string');
      expect(typeof l.url).toBe('string');
      licenseIds.add(l.id);
    }

    // image{id: int, width: int, height: int, file_name: str, license: int, flickr_url: str, coco_url: str, date_captured: datetime}
    const imageIds = new Set<number>();
    for (const img of coco.images) {
      expect(isInt(img.id) && isInt(img.width) && isInt(img.height)).toBe(true);
      expect(typeof img.file_name).toBe('string');
      expect(licenseIds.has(img.license)).toBe(true);
      expect(typeof img.flickr_url).toBe('string');
      expect(typeof img.coco_url).toBe('string');
      expect(Number.isNaN(Date.parse(img.date_captured))).toBe(false);
      expect([img.width, img.height]).toEqual([result.video.width, result.video.height]);
      imageIds.add(img.id);
    }
    expect(imageIds.size).toBe(coco.images.length);

    // categories[{id: int, name: str, supercategory: str, keypoints: [str], skeleton: [edge]}], edges 1-based keypoint indices
    const categories = new Map<number, { keypoints: string[] }>();
    for (const c of coco.categories) {
      expect(isInt(c.id)).toBe(true);
      expect(typeof c.name).toBe('string');
      expect(typeof c.supercategory).toBe('string');
      expect(c.keypoints.length).toBeGreaterThan(0);
      for (const k of c.keypoints) expect(typeof k).toBe('string');
      for (const edge of c.skeleton) {
        expect(edge).toHaveLength(2);
        for (const i of edge) expect(i >= 1 && i <= c.keypoints.length).toBe(true);
      }
      categories.set(c.id, c);
    }
    expect(categories.size).toBe(coco.categories.length);
    expect(coco.categories.map((c: { name: string }) => c.name).sort()).toEqual([...new Set(result.points.map((p) => p.label ?? 'object'))].sort());

    // annotation{id: int, image_id: int, category_id: int, segmentation: RLE or [polygon], area: float,
    //            bbox: [x, y, width, height], iscrowd: 0 or 1,
    //            keypoints: [x1, y1, v1, …] (3 per category keypoint, v in 0..2), num_keypoints: int (keypoints with v > 0)}
    const annotationIds = new Set<number>();
    for (const a of coco.annotations) {
      expect(isInt(a.id) && isInt(a.image_id) && isInt(a.category_id)).toBe(true);
      expect(Array.isArray(a.segmentation)).toBe(true); // polygons (none: a point has no mask), as iscrowd 0 requires
      annotationIds.add(a.id);
      expect(imageIds.has(a.image_id)).toBe(true);
      const category = categories.get(a.category_id);
      expect(category).toBeDefined();
      expect(a.keypoints).toHaveLength(3 * category!.keypoints.length);
      const visibility = a.keypoints.filter((_: number, i: number) => i % 3 === 2);
      for (const v of visibility) expect([0, 1, 2]).toContain(v);
      expect(a.num_keypoints).toBe(visibility.filter((v: number) => v > 0).length);
      expect(a.bbox).toHaveLength(4);
      for (const v of a.bbox) expect(isNum(v)).toBe(true);
      expect(a.bbox[2]).toBeGreaterThan(0);
      expect(a.bbox[3]).toBeGreaterThan(0);
      expect(isNum(a.area) && a.area > 0).toBe(true);
      expect([0, 1]).toContain(a.iscrowd);
    }
    expect(annotationIds.size).toBe(coco.annotations.length);
  });

  it.each(results())('%s: each point is one visible keypoint on the image of its frame, inside its box', (_, result) => {
    const coco = exportCocoKeypoints(result);
    expect(coco.annotations).toHaveLength(result.points.length);
    result.points.forEach((p, i) => {
      const a = coco.annotations[i];
      const image = coco.images.find((img) => img.id === a.image_id)!;
      expect(image.frame_index).toBe(p.frame);
      expect(coco.categories.find((c) => c.id === a.category_id)!.name).toBe(p.label ?? 'object');
      expect(a.keypoints).toEqual([p.xPx, p.yPx, 2]);
      const [bx, by, bw, bh] = a.bbox;
      expect(p.xPx >= bx && p.xPx <= bx + bw && p.yPx >= by && p.yPx <= by + bh).toBe(true);
      expect(a.area).toBe(bw * bh);
      expect(a.track_id).toBe(p.trackId);
    });
  });
});

describe('MOT read by csv-parse', () => {
  it.each(results())('%s: ten numeric fields per line, 1-based frames and ids, a box around each point', (_, result) => {
    const boxSize = 8;
    const records: string[][] = parseCsv(exportMot(result, { boxSize }), { record_delimiter: '\n', relax_column_count: false });
    const placed = result.points.filter((p) => p.frame >= 0);
    expect(records).toHaveLength(placed.length);
    const frames: number[] = [];
    for (const r of records) {
      expect(r).toHaveLength(10);
      const [frame, id, left, top, width, height, conf, x, y, z] = r.map(Number);
      for (const v of [frame, id, left, top, width, height, conf, x, y, z]) expect(Number.isFinite(v)).toBe(true);
      expect(Number.isInteger(frame) && frame >= 1).toBe(true);
      expect(Number.isInteger(id) && id >= 1).toBe(true);
      expect([width, height]).toEqual([boxSize, boxSize]);
      expect(conf).toBe(1);
      expect([x, y, z]).toEqual([-1, -1, -1]);
      // The box is centred on a model point of that frame.
      const centre = placed.filter((p) => p.frame === frame - 1).find((p) => Math.abs(p.xPx - (left + width / 2)) <= 0.01 && Math.abs(p.yPx - (top + height / 2)) <= 0.01);
      expect(centre, `line ${r.join(',')}`).toBeDefined();
      frames.push(frame);
    }
    expect(frames).toEqual([...frames].sort((a, b) => a - b));
    // One object keeps one id over time.
    const idsByTrack = new Map<number, Set<string>>();
    records.forEach((r) => {
      const p = placed.find((q) => q.frame === Number(r[0]) - 1 && Math.abs(q.xPx - (Number(r[2]) + boxSize / 2)) <= 0.01)!;
      idsByTrack.set(p.trackId, (idsByTrack.get(p.trackId) ?? new Set()).add(r[1]));
    });
    for (const ids of idsByTrack.values()) expect(ids.size).toBe(1);
  });
});
