import { describe, expect, it } from 'vitest';
import { buildResult } from './result.ts';
import { CSV_COLUMNS, csvField, exportCsv } from './csv.ts';
import { exportCvatVideo } from './cvat.ts';
import { exportCocoKeypoints } from './coco.ts';
import { exportMot } from './mot.ts';
import { xmlEscape } from './xml.ts';
import { trackingInput, trackingResult } from './test-fixture.ts';

/** RFC 4180 reader: rows of fields; throws on a malformed quote. */
function readCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  let quotedField = false;
  while (i < text.length) {
    const c = text[i];
    if (quotedField) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), (i += 2);
      else if (c === '"') (quotedField = false), i++;
      else (field += c), i++;
    } else if (c === '"') {
      if (field !== '') throw new Error(`quote inside an unquoted field at ${i}`);
      quotedField = true;
      i++;
    } else if (c === ',') (row.push(field), (field = ''), i++);
    else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      (row = []), (field = ''), (i += 2);
    } else if (c === '\r' || c === '\n') throw new Error(`bare line break at ${i}`);
    else (field += c), i++;
  }
  if (quotedField) throw new Error('unterminated quote');
  if (field !== '' || row.length) throw new Error('last row lacks CRLF');
  return rows;
}

/** Checks XML well-formedness: one root, balanced tags, quoted attributes, only the five entities and char refs. */
function checkXml(xml: string): void {
  const entity = /&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/y;
  const checkText = (s: string, at: number) => {
    const bad = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]|\]\]>/.exec(s);
    if (bad) throw new Error(`character not allowed in XML at ${at + bad.index}`);
    for (let i = 0; i < s.length; i++) {
      if (s[i] === '<') throw new Error(`raw < at ${at + i}`);
      if (s[i] === '&') {
        entity.lastIndex = i;
        if (!entity.test(s)) throw new Error(`bad entity at ${at + i}`);
      }
    }
  };
  let i = xml.startsWith('<?xml') ? xml.indexOf('?>') + 2 : 0;
  const stack: string[] = [];
  let roots = 0;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const text = xml.slice(i, lt < 0 ? xml.length : lt);
    if (stack.length === 0 && text.trim()) throw new Error(`text outside the root at ${i}`);
    checkText(text, i);
    if (lt < 0) break;
    const tag = /^<(\/?)([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_][\w.-]*="[^"<]*")*)\s*(\/?)>/.exec(xml.slice(lt));
    if (!tag) throw new Error(`malformed tag at ${lt}: ${xml.slice(lt, lt + 40)}`);
    const [whole, close, name, attrs, selfClose] = tag;
    const names = [...attrs.matchAll(/([A-Za-z_][\w.-]*)="([^"]*)"/g)].map((a) => (checkText(a[2], lt), a[1]));
    if (new Set(names).size !== names.length) throw new Error(`repeated attribute in <${name}>`);
    if (close) {
      if (stack.pop() !== name) throw new Error(`</${name}> does not close the open tag`);
    } else if (!selfClose) {
      if (stack.length === 0) roots++;
      stack.push(name);
    } else if (stack.length === 0) roots++;
    i = lt + whole.length;
  }
  if (stack.length) throw new Error(`unclosed <${stack.join('><')}>`);
  if (roots !== 1) throw new Error(`${roots} root elements`);
}

const unescape = (s: string) =>
  s.replace(/&(amp|lt|gt|quot|apos|#\d+);/g, (_, e: string) => (e[0] === '#' ? String.fromCharCode(Number(e.slice(1))) : { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[e]!));

describe('CSV', () => {
  it('quotes per RFC 4180', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField(1.5)).toBe('1.5');
  });

  it('writes one row per point, every row with every column, tricky text intact', () => {
    const r = trackingResult();
    const rows = readCsv(exportCsv(r));
    expect(rows[0]).toEqual([...CSV_COLUMNS]);
    expect(rows).toHaveLength(1 + r.points.length);
    for (const row of rows) expect(row).toHaveLength(CSV_COLUMNS.length);
    const col = (name: (typeof CSV_COLUMNS)[number]) => rows.slice(1).map((row) => row[CSV_COLUMNS.indexOf(name)]);
    expect(new Set(col('video'))).toEqual(new Set([r.video.name]));
    expect(new Set(col('query'))).toEqual(new Set([r.query.text]));
    expect(new Set(col('label'))).toEqual(new Set([r.points[0].label]));
    expect(col('track_id')).toEqual(['1', '1', '2', '1', '2', '1']);
    expect(col('frame')).toEqual(['0', '30', '30', '60', '60', '89']);
    expect(col('time_s').map(Number)).toEqual([0, 1, 1, 2, 2, 2.9667]);
    // Full precision: the pixel column reads back as the exact number.
    expect(col('x_px').map(Number)).toEqual([...r.points].sort((a, b) => a.timeS - b.timeS || a.trackId - b.trackId).map((p) => p.xPx));
  });
});

describe('CVAT for video 1.1', () => {
  it('is well-formed XML with escaped text', () => {
    const xml = exportCvatVideo(trackingResult());
    expect(() => checkXml(xml)).not.toThrow();
    // The checker itself catches what escaping prevents.
    expect(() => checkXml('<a b="x & y"/>')).toThrow(/entity/);
    expect(() => checkXml('<a><b></a></b>')).toThrow();
    expect(() => checkXml(`<a>${xmlEscape('x < y & "z"\n')}</a>`)).not.toThrow();
    expect(() => checkXml('<a>\u0001</a>')).toThrow(/not allowed/);
    expect(() => checkXml('<a>\ud800</a>')).toThrow(/not allowed/);
  });

  it('writes one point track per object, keyframes on model points, outside="1" at gaps and after the end', () => {
    const r = trackingResult();
    const xml = exportCvatVideo(r);
    const tracks = [...xml.matchAll(/<track id="(\d+)" label="([^"]*)" source="auto">([\s\S]*?)<\/track>/g)];
    expect(tracks.map((t) => t[1])).toEqual(['0', '1']);
    expect(unescape(tracks[0][2])).toBe(r.points[0].label);
    const shapes = (t: RegExpMatchArray) =>
      [...t[3].matchAll(/<points frame="(\d+)" outside="([01])" occluded="0" keyframe="1" points="([^"]*)"/g)].map((m) => `${m[1]}${m[2] === '1' ? ' out' : ''} ${m[3]}`);
    expect(shapes(tracks[0])).toEqual(['0 128,36', '15 out 128,36', '30 160,54', '45 out 160,54', '60 192,72', '75 out 192,72', '89 224,90']);
    expect(shapes(tracks[1])).toEqual(['30 384,324', '45 out 384,324', '60 416,342', '75 out 416,342']);
    expect(xml).toContain('<original_size><width>640</width><height>360</height></original_size>');
    expect(xml).toContain('<size>90</size>');
    expect(unescape(/<label><name>([^<]*)<\/name><type>points<\/type>/.exec(xml)![1])).toBe(r.points[0].label);
  });

  it('stays well-formed with control characters and unpaired surrogates in labels', () => {
    const input = trackingInput();
    const r = buildResult({ ...input, rawText: '<points coords="0.0 1 500 500">a\u0001b\ud800c &amp; \'d\'</points>', query: { ...input.query, text: 'q\u0000]]>' } });
    expect(() => checkXml(exportCvatVideo(r))).not.toThrow();
  });
});

describe('COCO keypoints', () => {
  it('has one image per sampled frame, one single-keypoint category per label, track ids on annotations', () => {
    const r = trackingResult();
    const coco = exportCocoKeypoints(r, { boxSize: 4 });
    expect(coco.images.map((im) => [im.id, im.frame_index, im.time_s, im.width, im.height])).toEqual(r.video.sampledFrames.map((f, i) => [i + 1, f, r.video.sampledTimesS[i], 640, 360]));
    expect(coco.categories).toEqual([{ id: 1, name: r.points[0].label, supercategory: 'object', keypoints: ['point'], skeleton: [] }]);
    expect(coco.tracks).toEqual([
      { id: 1, category_id: 1, video_id: 1 },
      { id: 2, category_id: 1, video_id: 1 },
    ]);
    expect(coco.annotations).toHaveLength(r.points.length);
    const imageOfFrame = new Map(coco.images.map((im) => [im.id, im.frame_index]));
    coco.annotations.forEach((a, i) => {
      const p = r.points[i];
      expect(a.id).toBe(i + 1);
      expect(imageOfFrame.get(a.image_id)).toBe(p.frame);
      expect(a.track_id).toBe(p.trackId);
      expect(a.attributes.track_id).toBe(p.trackId);
      expect(a.keypoints).toEqual([p.xPx, p.yPx, 2]);
      expect(a.num_keypoints).toBe(1);
      expect(a.bbox).toEqual([p.xPx - 2, p.yPx - 2, 4, 4]);
      expect(a.area).toBe(16);
      expect(a.iscrowd).toBe(0);
    });
    expect(JSON.parse(JSON.stringify(coco))).toEqual(coco);
  });
});

describe('MOT', () => {
  it('writes 10 values per line with 1-based frames and ids, points as small boxes', () => {
    const lines = exportMot(trackingResult(), { boxSize: 2 }).trimEnd().split('\n');
    expect(lines).toHaveLength(6);
    for (const l of lines) expect(l.split(',')).toHaveLength(10);
    expect(lines[0]).toBe('1,1,127,35,2,2,1,-1,-1,-1');
    expect(lines.map((l) => l.split(',').slice(0, 2).join(','))).toEqual(['1,1', '31,1', '31,2', '61,1', '61,2', '90,1']);
  });

  it('shifts ids when the model used id 0', () => {
    const input = trackingInput();
    const r = buildResult({ ...input, rawText: '<tracks coords="0.0 0 500 500 1 100 100">x</tracks>' });
    expect(exportMot(r).trimEnd().split('\n').map((l) => l.split(',')[1])).toEqual(['1', '2']);
  });
});
