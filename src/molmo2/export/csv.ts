// CSV, one row per point (long format), quoted per RFC 4180: CRLF line ends, a field
// with a comma, quote, CR or LF is wrapped in quotes and its quotes doubled.

import type { ResultJson } from './result.ts';

export const CSV_COLUMNS = ['video', 'query', 'track_id', 'label', 'frame', 'time_s', 'x_px', 'y_px', 'x_norm', 'y_norm', 'source'] as const;

export function csvField(value: string | number): string {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Points in time order, then by track id; `source` is "model" (every row comes from the model's answer). */
export function exportCsv(result: ResultJson): string {
  const rows = [...result.points]
    .sort((a, b) => a.timeS - b.timeS || a.trackId - b.trackId)
    .map((p) => [result.video.name, result.query.text, p.trackId, p.label ?? '', p.frame, p.timeS, p.xPx, p.yPx, p.xNorm, p.yNorm, 'model']);
  return [CSV_COLUMNS, ...rows].map((r) => r.map(csvField).join(',') + '\r\n').join('');
}
