// One question about a video and its answer ("run"), as kept in the history.
import type { ResultJson } from '../molmo2/export/result.ts';

export type Preset = 'point' | 'count' | 'track' | 'ask' | 'describe';

/** What a question is about, and how it is sent to the model. */
export interface ScopePlan {
  kind: 'frame' | 'frames' | 'range';
  /** 'images': several images (multi-crop each); 'video': sampled frames with timestamps. */
  mode: 'images' | 'video';
  /** Video times (s) of the frames sent, in order. */
  times: number[];
  /** Decoded frame index of each time. */
  frames: number[];
  /** Video time of the clip's t = 0 (the range start for a range, else 0). */
  clipStartS: number;
  /** Most frames a range may send (the cap the sampler used). */
  maxFrames: number;
  /** Short text, e.g. "frame 12" or "8 frames, 00:01.000–00:04.500". */
  label: string;
}

export type RunStatus = 'running' | 'done' | 'cancelled' | 'error';

export interface Run {
  id: string;
  /** Fingerprint of the video file the run belongs to. */
  fingerprint: string;
  createdAt: string;
  question: string;
  preset: Preset;
  scope: ScopePlan;
  status: RunStatus;
  error?: string;
  /** The answer with its parsed points (rebuilt while the answer streams). */
  result: ResultJson;
  /** Drawn on the video and the timeline. A new run is drawn and hides the earlier ones not pinned. */
  visible: boolean;
  /** The user chose to show it ("Show on video"), so a newer run does not hide it. */
  pinned?: boolean;
  /** The run this one followed up (its conversation continued; the turns are in `result.query.history`). */
  followUpOf?: string;
  /** The run this one re-ran (same question, frames and conversation). */
  rerunOf?: string;
  /** Loaded from a result file rather than asked here. */
  imported?: boolean;
}
