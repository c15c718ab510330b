// Turns an imported result file into a run of the open video, after checking it fits that video.
import { importResultJson, type ResultJson } from '../../molmo2/export/result.ts';
import { formatTime } from '../../molmo2/video.ts';
import type { Preset, Run, RunStatus, ScopePlan } from '../../state/results-types.ts';
import type { VideoInfo } from '../../../workers/decode-api.ts';
import { newRunId } from '../../state/results-store.ts';

export type ImportedRun = { ok: true; run: Run; warnings: string[] } | { ok: false; message: string };

const PRESET_OF_TASK: Record<ResultJson['query']['task'], Preset> = { point: 'point', track: 'track', count: 'count', other: 'ask' };

/** The run's status from the file's (files before version 3 say none: taken as complete). */
function runStatus(r: ResultJson): Pick<Run, 'status' | 'error'> {
  const status: RunStatus = r.status === 'cancelled' ? 'cancelled' : r.status === 'failed' ? 'error' : 'done';
  return status === 'error' ? { status, error: 'the run that made this file failed' } : { status };
}

export function runFromResultFile(text: string, fileName: string, info: VideoInfo, fingerprint: string): ImportedRun {
  const outcome = importResultJson(text);
  if (!outcome.ok) return { ok: false, message: `“${fileName}” is not a result file this app can read: ${outcome.errors.slice(0, 3).join('; ')}` };
  const r = outcome.result;
  if (r.video.width !== info.width || r.video.height !== info.height) {
    return { ok: false, message: `“${fileName}” was made for a ${r.video.width}×${r.video.height} video; the open video is ${info.width}×${info.height}.` };
  }
  const warnings: string[] = [];
  if (r.video.name !== info.fileName || r.video.decodedFrameCount !== info.frameCount) {
    warnings.push(`“${fileName}” was made for “${r.video.name}” (${r.video.decodedFrameCount} frames); the open video is “${info.fileName}” (${info.frameCount} frames).`);
  }
  const times = r.video.sampledTimesS;
  const video = r.query.mode === 'video';
  const scope: ScopePlan = {
    kind: video ? 'range' : times.length > 1 ? 'frames' : 'frame',
    mode: r.query.mode,
    times,
    frames: r.video.sampledFrames,
    clipStartS: r.query.clipStartS ?? 0,
    maxFrames: r.sampling.maxFrames,
    label: video && times.length ? `${times.length} frames as video, ${formatTime(times[0])}–${formatTime(times[times.length - 1])}` : `${times.length} frame(s) as images`,
  };
  const run: Run = {
    id: newRunId(),
    fingerprint,
    createdAt: r.createdAt,
    question: r.query.text,
    preset: PRESET_OF_TASK[r.query.task],
    scope,
    ...runStatus(r),
    result: r,
    visible: true,
    imported: true,
  };
  return { ok: true, run, warnings };
}
