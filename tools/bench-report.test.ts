import { describe, expect, it } from 'vitest';
import { failsIf, met, parseResultLine, parseTargetLines, renderReport, TARGETS, verdict, type BenchResult } from './bench-report.ts';

const MACHINE = { cpu: 'c', cores: 2, ramGiB: 8, os: 'o', node: 'v', chromium: 'ch', ffmpeg: 'ff', commit: 'abc', load: 0.5 };

describe('benchmark report', () => {
  it('reads targets from printed lines such as bench:convert prints', () => {
    const text = [
      'conversion benchmark (q4f16, webgpu target, Molmo2-4B widths with 2 decoder layers)',
      '  read alone              812 MB/s (7.0 s, peak RSS 90 MiB)',
      '  ratio convert / streaming read   0.082   (target ≥ 0.15)',
      '  converter peak RSS      530 MiB   (target < 1024 MiB)',
    ].join('\n');
    const t = parseTargetLines(text);
    expect(t).toEqual([
      { name: 'ratio convert / streaming read', value: 0.082, target: 0.15, op: '>=', unit: undefined },
      { name: 'converter peak RSS', value: 530, target: 1024, op: '<', unit: 'MiB' },
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

  it('lists the targets of failed and missing benchmarks as pending', () => {
    const results: BenchResult[] = [
      { name: 'browser', status: 'missing', note: 'tools/bench-browser.ts does not exist yet', targets: [] },
      { name: 'sampling', status: 'ok', targets: [{ name: 'ratio', value: 1.14, target: 0.8, op: '>=' }], adapter: 'google swiftshader' },
    ];
    const md = renderReport(MACHINE, results, 'now', 'npm run bench');
    expect(md).toContain(`| browser | follow-up vs from-scratch (features cached) TTFT | — | ≥ 5 | pending (missing: tools/bench-browser.ts does not exist yet) | ${failsIf('browser', 'follow-up vs from-scratch (features cached) TTFT (16 frames)')} |`);
    expect(md).toContain('| sampling | ratio | 1.14 | ≥ 0.8 | met | not described (add it to TARGETS in tools/bench-report.ts) |');
    expect(md).toContain('| WebGPU adapter | google swiftshader |');
  });

  it('says beside each target what would make it fail', () => {
    const results: BenchResult[] = [
      { name: 'convert', status: 'ok', targets: parseTargetLines('  ratio convert / streaming read   0.19   (target ≥ 0.15)\n  converter peak RSS      230 MiB   (target < 1024 MiB)') },
      { name: 'browser', status: 'ok', targets: [{ name: 'follow-up vs from-scratch (features cached) TTFT (16 frames)', value: 9.8, target: 5, op: '>=' }] },
      { name: 'sampling', status: 'skipped', note: 'skipped in this run', targets: [] },
    ];
    const md = renderReport(MACHINE, results, 'now', 'npm run bench');
    const rows = md.split('\n').filter((l) => /^\| (convert|browser|sampling) \|/.test(l));
    expect(rows).toHaveLength(4);
    for (const row of rows) expect(row).not.toContain('not described');
    expect(rows[2]).toContain('| 9.80 | ≥ 5 | met | prefix reuse is off: the follow-up then prefills the whole prompt');
    expect(rows[3]).toMatch(/^\| sampling \| decode worker frames\/s ÷ ffmpeg frames\/s \| — \| ≥ 0.8 \| pending \(skipped in this run\) \| framesAt decodes/);
    // Every benchmark that bench.ts runs has its targets described.
    expect([...new Set(TARGETS.map((g) => g.bench))].sort()).toEqual(['browser', 'convert', 'dispatch', 'full-size', 'hub-convert', 'long-video', 'preprocess', 'sampling']);
    for (const g of TARGETS) expect(g.failsIf.length).toBeGreaterThan(40);
  });
});
