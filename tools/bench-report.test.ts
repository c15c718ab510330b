import { describe, expect, it } from 'vitest';
import { met, parseResultLine, parseTargetLines, renderReport, verdict, type BenchResult } from './bench-report.ts';

describe('benchmark report', () => {
  it('reads targets from printed lines such as bench:convert prints', () => {
    const text = [
      'conversion benchmark (q4f16, webgpu target, Molmo2-4B widths with 2 decoder layers)',
      '  read alone              812 MB/s (7.0 s, peak RSS 90 MiB)',
      '  ratio convert / read    0.42   (target ≥ 0.5)',
      '  converter peak RSS      1530 MiB   (target < 2048 MiB)',
    ].join('\n');
    const t = parseTargetLines(text);
    expect(t).toEqual([
      { name: 'ratio convert / read', value: 0.42, target: 0.5, op: '>=', unit: undefined },
      { name: 'converter peak RSS', value: 1530, target: 2048, op: '<', unit: 'MiB' },
    ]);
    expect(t.map(met)).toEqual([false, true]);
  });

  it('prefers the last BENCH_RESULT line and ignores broken JSON', () => {
    expect(parseResultLine('x\nBENCH_RESULT {"name":"a"}\nBENCH_RESULT {"name":"b"}\n')?.name).toBe('b');
    expect(parseResultLine('BENCH_RESULT {oops')).toBeUndefined();
    expect(parseResultLine('no result')).toBeUndefined();
  });

  it('says when a real-GPU target was measured without one', () => {
    expect(verdict({ name: 'r', value: 0.1, target: 3, op: '>=', realGpuOnly: true, onRealGpu: false })).toMatch(/no real GPU/);
    expect(verdict({ name: 'r', value: 4, target: 3, op: '>=', realGpuOnly: true, onRealGpu: true })).toBe('met');
  });

  it('lists failed and missing benchmarks instead of their targets', () => {
    const results: BenchResult[] = [
      { name: 'browser', status: 'missing', note: 'tools/bench-browser.ts does not exist yet', targets: [] },
      { name: 'sampling', status: 'ok', targets: [{ name: 'ratio', value: 1.14, target: 0.8, op: '>=' }], adapter: 'google swiftshader' },
    ];
    const md = renderReport({ cpu: 'c', cores: 2, ramGiB: 8, os: 'o', node: 'v', chromium: 'ch', ffmpeg: 'ff', commit: 'abc', load: 0.5 }, results, 'now', 'npm run bench');
    expect(md).toContain('| browser | — | — | — | missing: tools/bench-browser.ts does not exist yet |');
    expect(md).toContain('| sampling | ratio | 1.14 | ≥ 0.8 | met |');
    expect(md).toContain('| WebGPU adapter | google swiftshader |');
  });
});
