// Molmo2's video frame sampling ("uniform_last_frame" of video_processing_molmo2.py in allenai/molmo2's
// remote code) and the time → frame rules the player and the model share. Platform-free.

export interface SampleOptions {
  /** Highest sampling rate (released configs: 2 fps). */
  maxFps?: number;
  /** Frame cap (released configs: 384; the app passes its own, e.g. 64). */
  maxFrames?: number;
}

/**
 * The times (seconds from the clip start) whose presented frames Molmo2 samples from a clip of
 * `durationSeconds`: every 1/maxFps seconds plus the last instant, or — when that would exceed
 * maxFrames (duration > (maxFrames − 1) / maxFps) — maxFrames times spread uniformly over [0, D].
 */
export function sampleTimes(durationSeconds: number, opts: SampleOptions = {}): number[] {
  const maxFps = opts.maxFps ?? 2;
  const maxFrames = opts.maxFrames ?? 384;
  const d = durationSeconds;
  if (!(d > 0) || !Number.isFinite(d) || !(maxFps > 0) || !(maxFrames >= 1)) return d === 0 ? [0] : [];
  if (d > (maxFrames - 1) / maxFps) {
    // numpy.linspace(0, D, N): both ends included.
    if (maxFrames === 1) return [0];
    const step = d / (maxFrames - 1);
    return Array.from({ length: maxFrames }, (_, i) => (i === maxFrames - 1 ? d : i * step));
  }
  // numpy.arange(0, D, 1/f) has ceil(D·f) elements i/f (D excluded), then D is appended.
  const step = 1 / maxFps;
  const count = Math.ceil(d / step);
  const times = Array.from({ length: count }, (_, i) => i * step);
  times.push(d);
  return times;
}

/** Sample times of the range [start, end] of a video, as absolute times: the range is sampled as a clip. */
export function rangeSampleTimes(start: number, end: number, opts: SampleOptions = {}): number[] {
  return sampleTimes(end - start, opts).map((t) => start + t);
}

/**
 * Index of the frame presented at time t: the last frame whose timestamp is ≤ t. `timestamps` are the
 * frames' presentation times in ascending order. Times before the first frame give frame 0.
 */
export function presentedFrameIndex(t: number, timestamps: ArrayLike<number>): number {
  let lo = 0;
  let hi = timestamps.length - 1;
  if (hi < 0) return -1;
  // A tolerance of 1 µs absorbs float noise in container timestamps (the reference clips times the same way).
  const target = t + 1e-6;
  if (target < timestamps[0]) return 0;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (timestamps[mid] <= target) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** "mm:ss.mmm" (or "h:mm:ss.mmm" past an hour). */
export function formatTime(seconds: number): string {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  const rest = ms % 1000;
  const mmss = `${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}.${String(rest).padStart(3, '0')}`;
  return h > 0 ? `${h}:${mmss}` : mmss;
}

/**
 * Whether frames come at irregular intervals (phones drop or stretch frames): some gap between
 * consecutive timestamps differs from the median gap by more than 10 % plus 1.5 ms, a margin for
 * containers that round times to milliseconds (29.97 fps in WebM: 33 and 34 ms gaps).
 */
export function isVariableFrameRate(timestamps: ArrayLike<number>): boolean {
  const gaps: number[] = [];
  for (let i = 1; i < timestamps.length; i++) gaps.push(timestamps[i] - timestamps[i - 1]);
  if (gaps.length < 2) return false;
  const sorted = [...gaps].sort((a, b) => a - b);
  const median = sorted[sorted.length >> 1];
  const margin = 0.1 * median + 0.0015;
  return gaps.some((g) => Math.abs(g - median) > margin);
}
