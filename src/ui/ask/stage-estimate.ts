// Time for the running question: how long it has run, and what is left of its current stage,
// estimated only from measured rates (never a guess):
// - vision: ms per frame measured in this run after its first frame (the first one carries the
//   warm-up: shader compiles, first uploads), else the rate of an earlier run on this model;
// - prefill: tokens/s of earlier runs on this model;
// - decode: this run's own tokens/s once a few tokens are in, else earlier runs'. The answer can end
//   at any token, so decode shows an upper bound: the time to reach the answer limit.
// Rates are kept per model (id and dtype) in localStorage: they belong to this device's GPU.
import type { AskEvent, StageTimings } from '../../../workers/inference-api.ts';

export type Stage = 'preprocess' | 'vision' | 'prefill' | 'decode';

export interface Rates {
  visionMsPerFrame?: number;
  prefillTokensPerSecond?: number;
  decodeTokensPerSecond?: number;
}

/** When the running question's events arrived (ms, one clock). */
export interface Marks {
  startedAt: number;
  stage: Stage;
  stageStartedAt: number;
  /** The first vision progress with a frame done, and the latest one with more done. */
  visionFirst?: { at: number; done: number };
  visionLast?: { at: number; done: number };
  /** Tokens generated so far; when the first and the latest arrived. */
  generated: number;
  firstTokenAt?: number;
  lastTokenAt?: number;
}

/** Fewer tokens than these give rates dominated by fixed costs, not worth keeping. */
const MIN_PREFILL_TOKENS = 32;
const MIN_DECODE_TOKENS = 4;

export function startMarks(now: number): Marks {
  return { startedAt: now, stage: 'preprocess', stageStartedAt: now, generated: 0 };
}

/** The marks after one event from the worker. */
export function markEvent(m: Marks, e: AskEvent, now: number): Marks {
  if (e.type === 'stage') {
    const next: Marks = e.stage === m.stage ? { ...m } : { ...m, stage: e.stage, stageStartedAt: now };
    if (e.stage === 'vision' && e.done !== undefined && e.done >= 1) {
      if (!next.visionFirst) next.visionFirst = { at: now, done: e.done };
      else if (e.done > (next.visionLast ?? next.visionFirst).done) next.visionLast = { at: now, done: e.done };
    }
    return next;
  }
  if (e.type === 'token') return { ...m, generated: e.generated, firstTokenAt: m.firstTokenAt ?? now, lastTokenAt: now };
  return m;
}

/** Vision ms per frame in this run, after its first frame; undefined until two progress reports. */
export function runVisionMsPerFrame(m: Marks): number | undefined {
  const { visionFirst: a, visionLast: b } = m;
  return a && b && b.done > a.done ? (b.at - a.at) / (b.done - a.done) : undefined;
}

/** Decode tokens/s in this run, after its first token (the first follows the prefill). */
export function runDecodeTokensPerSecond(m: Marks): number | undefined {
  if (m.generated < MIN_DECODE_TOKENS || m.firstTokenAt === undefined || m.lastTokenAt === undefined) return undefined;
  const ms = m.lastTokenAt - m.firstTokenAt;
  return ms > 0 ? ((m.generated - 1) * 1000) / ms : undefined;
}

export interface Estimate {
  /** Seconds since the question began. */
  elapsedS: number;
  /** Seconds left of this stage, when a rate is known (and the stage is not already past it). */
  leftS?: number;
  /** 'at most' for decode: the answer may end before its limit. */
  bound: 'about' | 'at most';
  /** 0–1 of the stage done, when it can be told (else the bar is indeterminate). */
  fraction?: number;
}

export interface EstimateInput {
  progress?: { done: number; total: number };
  promptTokens?: number;
  maxNewTokens: number;
  /** Rates from earlier runs on this model. */
  rates?: Rates;
  now: number;
}

export function estimate(m: Marks, input: EstimateInput): Estimate {
  const { progress, promptTokens, maxNewTokens, rates, now } = input;
  const elapsedS = (now - m.startedAt) / 1000;
  const inStage = now - m.stageStartedAt;
  let leftMs: number | undefined;
  let fraction: number | undefined;
  if (m.stage === 'vision' && progress && progress.done < progress.total) {
    fraction = progress.done / progress.total;
    const perFrame = runVisionMsPerFrame(m) ?? rates?.visionMsPerFrame;
    // The frames in flight have been running since the last report (or the stage's start).
    const lastReport = (m.visionLast ?? m.visionFirst)?.at ?? m.stageStartedAt;
    if (perFrame) leftMs = (progress.total - progress.done) * perFrame - (now - lastReport);
  } else if (m.stage === 'prefill' && promptTokens && rates?.prefillTokensPerSecond) {
    // The whole prompt: an upper bound when part of it is reused from the previous question.
    leftMs = (promptTokens * 1000) / rates.prefillTokensPerSecond - inStage;
  } else if (m.stage === 'decode') {
    fraction = Math.min(1, m.generated / maxNewTokens);
    const rate = runDecodeTokensPerSecond(m) ?? rates?.decodeTokensPerSecond;
    if (rate) leftMs = ((maxNewTokens - m.generated) * 1000) / rate - (m.lastTokenAt !== undefined ? now - m.lastTokenAt : inStage);
  }
  // Past its estimate, a stage shows no estimate rather than a wrong one.
  const leftS = leftMs !== undefined && leftMs > 0 ? leftMs / 1000 : undefined;
  if (leftS !== undefined && m.stage !== 'decode') fraction = inStage / (inStage + leftMs!);
  return { elapsedS, leftS, bound: m.stage === 'decode' ? 'at most' : 'about', fraction };
}

/** The rates to keep after a finished run: what it measured well, else what was kept before. */
export function ratesAfter(previous: Rates | undefined, m: Marks, t: Partial<StageTimings>): Rates {
  const visionAll = t.visionEncoded && t.visionMs ? t.visionMs / t.visionEncoded : undefined;
  const prefillTokens = t.prefillTokens ?? t.promptTokens ?? 0;
  return {
    visionMsPerFrame: runVisionMsPerFrame(m) ?? previous?.visionMsPerFrame ?? visionAll,
    prefillTokensPerSecond: prefillTokens >= MIN_PREFILL_TOKENS && t.prefillTokensPerSecond ? t.prefillTokensPerSecond : previous?.prefillTokensPerSecond,
    decodeTokensPerSecond:
      (t.generatedTokens ?? 0) >= MIN_DECODE_TOKENS && t.decodeTokensPerSecond ? t.decodeTokensPerSecond : previous?.decodeTokensPerSecond,
  };
}

const STORAGE_KEY = 'molmo2-web.stage-rates';

function storage(): Storage | undefined {
  try {
    return globalThis.localStorage;
  } catch {
    return undefined; // Storage blocked (privacy settings): estimates then come from this run only.
  }
}

function readAll(s: Storage | undefined): Record<string, Rates> {
  try {
    const all = JSON.parse(s?.getItem(STORAGE_KEY) ?? '{}') as unknown;
    return all && typeof all === 'object' ? (all as Record<string, Rates>) : {};
  } catch {
    return {};
  }
}

/** The rates kept for a model ("id:dtype"). */
export function loadRates(model: string, s = storage()): Rates | undefined {
  return readAll(s)[model];
}

export function saveRates(model: string, rates: Rates, s = storage()): void {
  try {
    s?.setItem(STORAGE_KEY, JSON.stringify({ ...readAll(s), [model]: rates }));
  } catch {
    // Full or blocked storage only costs the next run its estimate.
  }
}

/** "45 s", "3 min 20 s". */
export function formatSeconds(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}
