// The answer as a person reads it: what was found, how many and when, with its points listed, instead
// of the model's raw grammar (`<tracks coords="0.0 1 148 528 …">`), which stays behind a toggle.
import { formatTime } from '../../molmo2/video.ts';
import type { ResultJson } from '../../molmo2/export/result.ts';

export interface SummaryPoint {
  trackId: number;
  label: string;
  frame: number;
  time: string;
  x: number;
  y: number;
}

export interface AnswerSummary {
  /** e.g. "3 points: cups", "Count: 4 · 4 points: boxes", "2 tracks: car over 00:01.000–00:03.500 (6 frames)". */
  headline: string;
  points: SummaryPoint[];
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The summary of a parsed answer; undefined when it has neither points nor a count (its text is the answer). */
export function answerSummary(result: Pick<ResultJson, 'points' | 'count' | 'query'>): AnswerSummary | undefined {
  const { points, count } = result;
  if (points.length === 0 && count === null) return undefined;
  const parts: string[] = [];
  if (count !== null) parts.push(`Count: ${count}`);
  if (points.length > 0) {
    const labels = [...new Set(points.map((p) => p.label).filter((l): l is string => !!l))];
    const what = labels.length > 0 ? `: ${labels.join(', ')}` : '';
    const tracked = result.query.task === 'track' || points.some((p) => p.tag === 'tracks');
    const found = tracked ? plural(new Set(points.map((p) => p.trackId)).size, 'track') : plural(points.length, 'point');
    parts.push(`${found}${what} ${when(points.map((p) => ({ timeS: p.timeS, frame: p.frame })))}`);
  }
  return {
    headline: parts.join(' · '),
    points: points.map((p) => ({ trackId: p.trackId, label: p.label ?? '', frame: p.frame, time: formatTime(p.timeS), x: Math.round(p.xPx), y: Math.round(p.yPx) })),
  };
}

/** "at 00:01.000 (frame 10)" for one frame, "over 00:01.000–00:03.500 (6 frames)" for several. */
function when(at: { timeS: number; frame: number }[]): string {
  const times = at.map((a) => a.timeS);
  const first = Math.min(...times);
  const last = Math.max(...times);
  const frames = new Set(at.map((a) => `${a.frame}@${a.timeS}`)).size;
  if (frames === 1) return at[0].frame >= 0 ? `at ${formatTime(first)} (frame ${at[0].frame})` : `at ${formatTime(first)}`;
  return `over ${formatTime(first)}–${formatTime(last)} (${plural(frames, 'frame')})`;
}
