import { describe, expect, it } from 'vitest';
import { formatBytes, formatDuration, LoadProgressTracker } from './progress.ts';

describe('load progress', () => {
  it('aggregates files into one monotonic total with speed and ETA from network bytes', () => {
    let now = 0;
    const p = new LoadProgressTracker(() => now);
    p.addFile('a', 1000);
    p.addFile('b', 3000);
    p.stage = 'download';
    p.complete('a', 'cached'); // from the cache: no speed
    expect(p.snapshot()).toMatchObject({ bytesDone: 1000, bytesTotal: 4000, bytesPerSecond: 0 });
    for (let i = 0; i < 5; i++) {
      now += 100;
      p.advance('b', 200, true);
    }
    const s = p.snapshot();
    expect(s.bytesDone).toBe(2000);
    expect(s.bytesPerSecond).toBeCloseTo(2000, 0); // 800 bytes over the 400 ms between first and last chunk
    expect(s.etaSeconds).toBeCloseTo(1, 1);
    expect(s.files.find((f) => f.path === 'a')?.state).toBe('cached');
  });

  it('never moves backwards when a file restarts, and never passes 100 %', () => {
    const p = new LoadProgressTracker(() => 0);
    p.addFile('x', 100);
    p.advance('x', 60, false);
    const before = p.snapshot();
    p.restartFile('x');
    const after = p.snapshot();
    expect(after.bytesDone).toBe(before.bytesDone);
    expect(after.bytesTotal).toBe(160);
    p.advance('x', 500, false);
    expect(p.snapshot().bytesDone).toBe(160);
    expect(p.snapshot().files[0].done).toBe(100);
  });

  it('shows a stalled download slowing down', () => {
    let now = 0;
    const p = new LoadProgressTracker(() => now);
    p.addFile('x', 10_000);
    p.stage = 'download';
    p.advance('x', 1000, true);
    now = 1000;
    p.advance('x', 1000, true);
    const live = p.bytesPerSecond();
    now = 2900;
    expect(p.bytesPerSecond()).toBeLessThan(live);
  });

  it('formats sizes and durations for people', () => {
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(2_500_000)).toBe('2.50 MB');
    expect(formatBytes(2_700_000_000)).toBe('2.70 GB');
    expect(formatDuration(42)).toBe('42 s');
    expect(formatDuration(200)).toBe('3 min 20 s');
    expect(formatDuration(3900)).toBe('1 h 5 min');
  });
});
