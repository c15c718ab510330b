// One aggregate progress for a model load: bytes done / total, network speed over a sliding window,
// ETA, and per-file detail. Pure (the clock is injected) so it is unit-tested in Node.
import type { FileProgress, LoadProgress, LoadStage } from './api-types.ts';

const SPEED_WINDOW_MS = 3000;

export class LoadProgressTracker {
  private readonly files = new Map<string, FileProgress>();
  private total = 0;
  /** Bytes counted as done across files; only ever grows. */
  private done = 0;
  private samples: { t: number; bytes: number }[] = [];
  private networkBytes = 0;
  stage: LoadStage = 'manifest';
  message = '';

  constructor(private readonly now: () => number = () => performance.now()) {}

  addFile(path: string, bytes: number): void {
    this.files.set(path, { path, bytes, done: 0, state: 'waiting' });
    this.total += bytes;
  }

  /** A file is read again from scratch (e.g. after a hash mismatch): its bytes are added to the total
   * again so the overall bar never moves backwards. */
  restartFile(path: string): void {
    const f = this.need(path);
    this.total += f.done;
    f.done = 0;
    f.state = 'downloading';
  }

  setState(path: string, state: FileProgress['state']): void {
    this.need(path).state = state;
  }

  /** `bytes` more of `path` arrived; `fromNetwork` counts them towards the speed. */
  advance(path: string, bytes: number, fromNetwork: boolean): void {
    const f = this.need(path);
    const add = Math.max(0, Math.min(bytes, f.bytes - f.done));
    f.done += add;
    this.done += add;
    if (fromNetwork && bytes > 0) {
      this.networkBytes += bytes;
      this.samples.push({ t: this.now(), bytes: this.networkBytes });
    }
  }

  /** Marks a file complete (e.g. taken whole from the cache). */
  complete(path: string, state: 'cached' | 'done'): void {
    const f = this.need(path);
    this.done += f.bytes - f.done;
    f.done = f.bytes;
    f.state = state;
  }

  bytesPerSecond(): number {
    const t = this.now();
    while (this.samples.length > 2 && t - this.samples[0].t > SPEED_WINDOW_MS) this.samples.shift();
    if (this.samples.length < 2) return 0;
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    // Include the time since the last chunk, so a stalled download shows its speed falling.
    const span = Math.max(t, last.t) - first.t;
    return span > 0 ? ((last.bytes - first.bytes) * 1000) / span : 0;
  }

  snapshot(): LoadProgress {
    const speed = this.bytesPerSecond();
    const left = this.total - this.done;
    return {
      stage: this.stage,
      bytesDone: this.done,
      bytesTotal: this.total,
      bytesPerSecond: speed,
      etaSeconds: this.stage === 'download' && speed > 0 ? left / speed : undefined,
      files: [...this.files.values()].map((f) => ({ ...f })),
      message: this.message,
    };
  }

  private need(path: string): FileProgress {
    const f = this.files.get(path);
    if (!f) throw new Error(`internal: no progress entry for ${path}`);
    return f;
  }
}

export { formatBytes } from '../molmo2/format-bytes.ts';

/** "45 s", "3 min 20 s", "1 h 5 min". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
