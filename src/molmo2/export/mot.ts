// MOT Challenge text. Lossy: MOT has boxes only, so each point becomes a box of `boxSize` pixels
// centred on it; labels and normalised coordinates are dropped. Lines are
// `frame,id,bb_left,bb_top,bb_width,bb_height,conf,x,y,z` with 1-based frames and ids, conf 1 and
// x, y, z = -1.

import type { ResultJson } from './result.ts';

export interface MotOptions {
  /** Side in pixels of the box drawn around each point (default 1). */
  boxSize?: number;
}

export function exportMot(result: ResultJson, opts: MotOptions = {}): string {
  const box = opts.boxSize ?? 1;
  // MOT ids start at 1; a model id of 0 shifts every id by one so ids stay distinct.
  const shift = result.points.some((p) => p.trackId < 1) ? 1 - Math.min(...result.points.map((p) => p.trackId)) : 0;
  const n = (v: number) => String(Math.round(v * 100) / 100);
  return result.points
    .filter((p) => p.frame >= 0)
    .sort((a, b) => a.frame - b.frame || a.trackId - b.trackId)
    .map((p) => [p.frame + 1, p.trackId + shift, n(p.xPx - box / 2), n(p.yPx - box / 2), n(box), n(box), 1, -1, -1, -1].join(',') + '\n')
    .join('');
}
