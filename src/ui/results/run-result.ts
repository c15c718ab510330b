// A run's answer as a result document (src/molmo2/export/result.ts): what the model was asked about,
// its raw text, and its points placed on the video's frames. Rebuilt as the answer streams, so points
// show as soon as they are complete.
import pkg from '../../../package.json';
import { buildResult, type ResultJson } from '../../molmo2/export/result.ts';
import type { VideoInfo } from '../../../workers/decode-api.ts';
import type { Preset, ScopePlan } from '../../state/results-types.ts';

export const APP = { name: pkg.name, version: pkg.version };

export interface RunQuery {
  question: string;
  preset: Preset;
  scope: ScopePlan;
  model: { id: string; dtype: string };
  maxNewTokens: number;
}

/** What the question asks for, from the preset or, for free text, from its wording. */
export function taskOf(preset: Preset, question: string): ResultJson['query']['task'] {
  if (preset === 'point' || preset === 'track' || preset === 'count') return preset;
  if (/^\s*point\b/i.test(question)) return 'point';
  if (/^\s*track\b/i.test(question)) return 'track';
  if (/\bhow many\b|\bcount\b/i.test(question)) return 'count';
  return 'other';
}

export function runResult(q: RunQuery, info: VideoInfo, rawText: string, timingMs: Record<string, number> = {}, createdAt?: string): ResultJson {
  return buildResult({
    app: APP,
    model: q.model,
    sampling: { mode: q.scope.kind === 'range' ? 'uniform_last_frame' : q.scope.kind, fps: 2, maxFrames: q.scope.maxFrames, maxNewTokens: q.maxNewTokens },
    video: {
      name: info.fileName,
      width: info.width,
      height: info.height,
      durationS: info.duration,
      fps: info.fps > 0 ? info.fps : null,
      decodedFrameCount: info.frameCount,
      sampledTimesS: q.scope.times,
      frameTimestampsS: info.frameTimes,
    },
    query: { text: q.question, task: taskOf(q.preset, q.question), mode: q.scope.mode, clipStartS: q.scope.clipStartS },
    rawText,
    timingMs,
    ...(createdAt ? { createdAt } : {}),
  });
}
