// Results of the benchmark child processes and bench/REPORT.md. A benchmark reports either a last
// `BENCH_RESULT {json}` line (bench-page.ts printResult) or plain lines ending in "(target ≥ x)" /
// "(target < x unit)", which are parsed so any benchmark that prints its targets is collected.
// TARGETS says, for each target, what would make it fail; the report prints it beside the figure.

export type Op = '>=' | '>' | '<=' | '<';

export interface Target {
  name: string;
  value: number;
  target: number;
  op: Op;
  unit?: string;
  /** The target is defined for real GPUs and this run had none (SwiftShader). */
  realGpuOnly?: boolean;
  onRealGpu?: boolean;
}

export interface BenchResult {
  name: string;
  status: 'ok' | 'failed' | 'missing' | 'skipped';
  /** Why it failed / is missing / was skipped. */
  note?: string;
  seconds?: number;
  adapter?: string;
  targets: Target[];
  /** Figures a benchmark reports on its BENCH_RESULT line; a string `markdown` is rendered in the report as the run's section. */
  figures?: Record<string, unknown>;
  /** The benchmark's own printed summary (its last lines). */
  output?: string;
  /** ISO time of the run this result comes from (earlier runs for skipped benchmarks). */
  at?: string;
}

/** A benchmark's target as the report describes it: the measure's printed name (a prefix of it) and what a failure means. */
export interface TargetGuard {
  bench: string;
  /** The start of the measure's name as the benchmark prints it. */
  measure: string;
  /** The target as written, for a benchmark with no figures in this report. */
  target: string;
  /** The regression that makes the target fail. */
  failsIf: string;
}

export const TARGETS: TargetGuard[] = [
  {
    bench: 'convert',
    measure: 'ratio convert / streaming read',
    target: '≥ 0.15',
    failsIf:
      'the converter loses a quarter of its speed against reading the same bytes (0.20 on this 2-core machine when idle): e.g. encoding on one thread instead of a pool (about 0.13), an extra pass over the weights, or hashing the output in a second pass; other load on the machine lowers it too (see the load average)',
  },
  {
    bench: 'convert',
    measure: 'converter peak RSS',
    target: '< 1024 MiB',
    failsIf: 'a whole shard, or the largest tensor as f32 (the 151936 × 2560 embedding: 1.56 GB), is held in memory instead of being streamed in blocks',
  },
  {
    bench: 'browser',
    measure: 'follow-up vs from-scratch (features cached) TTFT',
    target: '≥ 5',
    failsIf:
      'prefix reuse is off: the follow-up then prefills the whole prompt (BOS + the visual blocks + the question) as the from-scratch run does, and the ratio falls to about 1 (vision is cached in both, so it does not count)',
  },
  {
    bench: 'full-size',
    measure: 'renderer RSS rise while the sessions are made ÷ largest weight file',
    target: '< 1.2',
    failsIf:
      'the worker holds weight files whole while the sessions are made: onnxruntime-web\'s asyncify build (each file read whole, each graph twice: 5.2 on the 4B q4 model), or a Blob read into an ArrayBuffer before it is handed to onnxruntime',
  },
  {
    bench: 'sampling',
    measure: 'decode worker frames/s ÷ ffmpeg frames/s',
    target: '≥ 0.8',
    failsIf:
      'framesAt decodes from the key frame again for each sample time (a seek per time, several times the frames ffmpeg decodes in one pass), or frames take an extra copy or read-back on their way out',
  },
  {
    bench: 'dispatch',
    measure: 'decode-step kernels per layer ÷ anchor',
    target: '≤ 1.2',
    failsIf:
      'a fused op is split again: RoPE as Split/Mul/Sub/Add/Concat on q and k instead of GroupQueryAttention\'s do_rotary (+16 kernels a layer, 2.1), or each residual Add apart from its norm instead of SkipSimplifiedLayerNormalization (+2)',
  },
  {
    bench: 'dispatch',
    measure: 'read-backs per decode step',
    target: '≤ 1',
    failsIf:
      'a value a CPU-placed node needs is made on the GPU again: the mask or the context length outside the prefill If (an If copies what either branch uses), or a bool Cast before the patch CumSum (each one more read-back: 3 before this was fixed)',
  },
  {
    bench: 'hub-convert',
    measure: 'browser conversion renderer rise',
    target: '< 1024 MiB',
    failsIf: 'the conversion worker holds a shard, a whole large tensor or the output in memory (a Range reader that buffers the response, external-data chunks collected before they are written, or the q4 jobs not bounded)',
  },
  {
    bench: 'hub-convert',
    measure: 'files differing from npm run convert',
    target: '≤ 0',
    failsIf: 'the browser builds other graphs or encodes other bytes than the Node converter: another dtype mapping, chunk size or tensor order, or a resumed file that keeps bytes of another conversion',
  },
  {
    bench: 'long-video',
    measure: 'prefill memory growth ÷ token growth',
    target: '≤ 1.2',
    failsIf:
      'a buffer of the prefill grows with S·T again: one mask for the whole prompt (1.75 from 2k to 4k tokens here, and no run past about 8k tokens on a 1 GiB buffer), a chunk whose mask rows are not cut to its own queries, or the mask tiled per KV group after it is made',
  },
  {
    bench: 'preprocess',
    measure: 'preprocessing per frame, CPU ms ÷ GPU ms',
    target: '≥ 3 on a real GPU',
    failsIf:
      'the GPU path reads pixels back to the CPU or falls back to the CPU path (judged only on a real GPU: on a fallback adapter the "GPU" is the CPU)',
  },
];

/** What makes a target fail, from TARGETS; undefined for a target nobody described. */
export function failsIf(bench: string, measure: string): string | undefined {
  return TARGETS.find((g) => g.bench === bench && measure.startsWith(g.measure))?.failsIf;
}

const OPS: Record<string, Op> = { '≥': '>=', '>=': '>=', '>': '>', '≤': '<=', '<=': '<=', '<': '<' };

/** Targets from the printed lines, e.g. "  ratio convert / read    0.83   (target ≥ 0.5)". */
export function parseTargetLines(text: string): Target[] {
  const out: Target[] = [];
  const re = /^\s*(.+?)\s{2,}(-?[\d.]+)\s*([A-Za-z/%]+)?\s+\(target\s*(≥|>=|>|≤|<=|<)\s*(-?[\d.]+)\s*([A-Za-z/%]+)?/;
  for (const line of text.split('\n')) {
    const m = re.exec(line);
    if (!m) continue;
    const value = Number(m[2]);
    const target = Number(m[5]);
    if (!Number.isFinite(value) || !Number.isFinite(target)) continue;
    out.push({ name: m[1].trim(), value, target, op: OPS[m[4]], unit: m[3] ?? m[6] });
  }
  return out;
}

/** The last BENCH_RESULT line's JSON, if any. */
export function parseResultLine(text: string): Partial<BenchResult> | undefined {
  const lines = text.split('\n').filter((l) => l.startsWith('BENCH_RESULT '));
  if (!lines.length) return undefined;
  try {
    return JSON.parse(lines[lines.length - 1].slice('BENCH_RESULT '.length)) as Partial<BenchResult>;
  } catch {
    return undefined;
  }
}

export function met(t: Target): boolean {
  switch (t.op) {
    case '>=':
      return t.value >= t.target;
    case '>':
      return t.value > t.target;
    case '<=':
      return t.value <= t.target;
    case '<':
      return t.value < t.target;
  }
}

export function verdict(t: Target): string {
  const ok = met(t);
  if (t.realGpuOnly && t.onRealGpu === false) return ok ? 'met (on a fallback adapter)' : 'not met — no real GPU here (fallback adapter); the target is for real GPUs';
  return ok ? 'met' : 'not met';
}

const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));
const opText: Record<Op, string> = { '>=': '≥', '>': '>', '<=': '≤', '<': '<' };

export interface Machine {
  cpu: string;
  cores: number;
  ramGiB: number;
  os: string;
  node: string;
  chromium: string;
  ffmpeg: string;
  commit: string;
  /** 1-minute load average when the run started (other work on the machine skews the figures). */
  load: number;
}

export function renderReport(m: Machine, results: BenchResult[], at: string, command: string): string {
  const adapters = [...new Set(results.map((r) => r.adapter).filter(Boolean))];
  const lines = [
    '# Benchmark report',
    '',
    `Regenerated by \`${command}\` at ${at} (commit ${m.commit}). Figures are measured side by side in one run of each benchmark on this machine.`,
    '',
    '| machine | |',
    '|---|---|',
    `| CPU | ${m.cpu} |`,
    `| cores | ${m.cores} |`,
    `| RAM | ${m.ramGiB.toFixed(1)} GiB |`,
    `| OS | ${m.os} |`,
    `| Node | ${m.node} |`,
    `| Chromium | ${m.chromium} |`,
    `| ffmpeg | ${m.ffmpeg} |`,
    `| load average at start | ${m.load.toFixed(2)} |`,
    `| WebGPU adapter | ${adapters.length ? adapters.join('; ') : 'not probed in this run'} |`,
    '',
    '## Targets',
    '',
    '| benchmark | measure | measured | target | result | fails if |',
    '|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    const when = r.status === 'skipped' && r.at ? ` (earlier run, ${r.at})` : '';
    if (r.targets.length === 0) {
      // Not measured here: its targets, from TARGETS, as pending.
      const tablesOnly = typeof r.figures?.markdown === 'string';
      const why = r.status === 'ok' ? (tablesOnly ? 'figures only (tables under Runs)' : 'no target printed') : r.status === 'skipped' ? (r.note ?? 'skipped') : `${r.status}${r.note ? `: ${r.note}` : ''}`;
      const guards = TARGETS.filter((g) => g.bench === r.name);
      if (guards.length === 0) lines.push(`| ${r.name} | — | — | — | ${why} | — |`);
      for (const g of guards) lines.push(`| ${r.name} | ${g.measure} | — | ${g.target} | ${r.status === 'ok' ? why : `pending (${why})`} | ${g.failsIf} |`);
      continue;
    }
    for (const t of r.targets) {
      const unit = t.unit ? ` ${t.unit}` : '';
      const guard = failsIf(r.name, t.name) ?? 'not described (add it to TARGETS in tools/bench-report.ts)';
      lines.push(`| ${r.name}${when} | ${t.name} | ${fmt(t.value)}${unit} | ${opText[t.op]} ${t.target}${unit} | ${verdict(t)} | ${guard} |`);
    }
  }
  lines.push('', '## Runs', '');
  for (const r of results) {
    const secs = r.seconds !== undefined ? `, ${r.seconds.toFixed(0)} s` : '';
    lines.push(`### ${r.name} — ${r.status}${secs}${r.status === 'skipped' && r.at ? ` (figures below from ${r.at})` : ''}`, '');
    if (r.note) lines.push(r.note, '');
    // A benchmark that prints markdown tables (figures.markdown) is shown as such, in full.
    const markdown = typeof r.figures?.markdown === 'string' ? r.figures.markdown : undefined;
    if (markdown) lines.push(markdown.trim(), '');
    else if (r.output) lines.push('```', r.output.trimEnd(), '```', '');
  }
  return lines.join('\n');
}
