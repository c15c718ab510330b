// CVAT for video 1.1 XML: one point track per object (cvat-ai/cvat format-xml.md). Frames are 0-based
// decoded frame indices. Every model point is a keyframe; a sampled time where the object is missing
// becomes an `outside="1"` keyframe at its last position, and so does the sampled time after its last
// point, so CVAT neither interpolates across gaps nor extends a track past its end.

import type { ResultJson, ResultPoint } from './result.ts';
import { xmlEscape } from './xml.ts';

const FALLBACK_LABEL = 'object';

export function exportCvatVideo(result: ResultJson): string {
  const { video } = result;
  const labels = [...new Set(result.points.map((p) => p.label ?? FALLBACK_LABEL))];
  const lines = [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<annotations>',
    '  <version>1.1</version>',
    '  <meta>',
    '    <task>',
    `      <name>${xmlEscape(`${video.name}: ${result.query.text}`)}</name>`,
    `      <size>${video.decodedFrameCount}</size>`,
    '      <mode>interpolation</mode>',
    '      <start_frame>0</start_frame>',
    `      <stop_frame>${Math.max(0, video.decodedFrameCount - 1)}</stop_frame>`,
    '      <labels>',
    ...labels.map((l) => `        <label><name>${xmlEscape(l)}</name><type>points</type><attributes></attributes></label>`),
    '      </labels>',
    `      <original_size><width>${video.width}</width><height>${video.height}</height></original_size>`,
    '    </task>',
    `    <source>${xmlEscape(video.name)}</source>`,
    '  </meta>',
  ];
  trackGroups(result).forEach((points, i) => {
    const label = points[0].label ?? FALLBACK_LABEL;
    lines.push(`  <track id="${i}" label="${xmlEscape(label)}" source="auto">`);
    for (const s of trackShapes(points, result)) {
      lines.push(
        `    <points frame="${s.frame}" outside="${s.outside ? 1 : 0}" occluded="0" keyframe="1" points="${fmt(s.x)},${fmt(s.y)}" z_order="0"></points>`,
      );
    }
    lines.push('  </track>');
  });
  lines.push('</annotations>', '');
  return lines.join('\n');
}

/** Points of each (track id, label), time-ordered; tracks in id order. */
function trackGroups(result: ResultJson): ResultPoint[][] {
  const groups = new Map<string, ResultPoint[]>();
  for (const p of [...result.points].sort((a, b) => a.trackId - b.trackId || a.timeS - b.timeS)) {
    const key = `${p.trackId}\u0000${p.label ?? ''}`;
    groups.set(key, [...(groups.get(key) ?? []), p]);
  }
  return [...groups.values()];
}

interface Shape {
  frame: number;
  outside: boolean;
  x: number;
  y: number;
}

function trackShapes(points: ResultPoint[], result: ResultJson): Shape[] {
  const { sampledTimesS, sampledFrames } = result.video;
  const shapes: Shape[] = [];
  const frameSeen = new Set<number>();
  const add = (s: Shape) => {
    // Two sampled times on one decoded frame: CVAT allows one shape per frame.
    if (s.frame < 0 || frameSeen.has(s.frame)) return;
    frameSeen.add(s.frame);
    shapes.push(s);
  };
  const sampleOf = (t: number) => sampledTimesS.indexOf(t);
  // Model points first, so an outside marker never displaces one.
  for (const p of points) add({ frame: p.frame, outside: false, x: p.xPx, y: p.yPx });
  points.forEach((p, i) => {
    const at = sampleOf(p.timeS);
    if (at < 0) return;
    const next = points[i + 1];
    const nextAt = next ? sampleOf(next.timeS) : -1;
    // A gap (or the track's end): the object is outside from the following sampled frame on.
    if (at + 1 < sampledFrames.length && (next === undefined || nextAt > at + 1)) {
      add({ frame: sampledFrames[at + 1], outside: true, x: p.xPx, y: p.yPx });
    }
  });
  return shapes.sort((a, b) => a.frame - b.frame);
}

const fmt = (v: number) => String(Math.round(v * 100) / 100);
