// A run's answer as a result document (src/molmo2/export/result.ts): what the model was asked about,
// its raw text, and its points placed on the video's frames. While the answer streams, `RunAnswer`
// reads it token by token and rebuilds the points only when they change, so points show as soon as
// they are complete.
import pkg from '../../../package.json';
import { createAnswerStream, type AnswerStream } from '../../molmo2/answer-stream.ts';
import { answerLayout, buildResult, questionTask, type ResultInput, type ResultJson } from '../../molmo2/export/result.ts';
import type { ChatTurn } from '../../molmo2/chat-template.ts';
import type { VideoInfo } from '../../../workers/decode-api.ts';
import type { Preset, ScopePlan } from '../../state/results-types.ts';

export const APP = { name: pkg.name, version: pkg.version };

export interface RunQuery {
  question: string;
  preset: Preset;
  scope: ScopePlan;
  model: { id: string; dtype: string };
  maxNewTokens: number;
  /** A follow-up's earlier turns (thread.ts), oldest first. */
  history?: ChatTurn[];
}

/** What the question asks for, from the preset or, for free text, from its wording. */
export function taskOf(preset: Preset, question: string): ResultJson['query']['task'] {
  if (preset === 'point' || preset === 'track' || preset === 'count') return preset;
  return questionTask(question);
}

function resultInput(q: RunQuery, info: VideoInfo, rawText: string, timingMs: Record<string, number> = {}, createdAt?: string): ResultInput {
  return {
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
    query: { text: q.question, task: taskOf(q.preset, q.question), mode: q.scope.mode, clipStartS: q.scope.clipStartS, ...(q.history?.length ? { history: q.history } : {}) },
    rawText,
    timingMs,
    ...(createdAt ? { createdAt } : {}),
  };
}

export function runResult(q: RunQuery, info: VideoInfo, rawText: string, timingMs: Record<string, number> = {}, createdAt?: string): ResultJson {
  return buildResult(resultInput(q, info, rawText, timingMs, createdAt));
}

/** The result of an answer that is still streaming in. */
export class RunAnswer {
  private stream: AnswerStream;
  private readonly input: ResultInput;
  private version = -1;
  result: ResultJson;

  constructor(q: RunQuery, info: VideoInfo, createdAt: string) {
    this.input = resultInput(q, info, '', {}, createdAt);
    this.stream = createAnswerStream(...this.layout());
    this.result = buildResult(this.input, this.stream.current());
  }

  private layout(): Parameters<typeof createAnswerStream> {
    const { frames, opts } = answerLayout(this.input);
    return [frames, opts];
  }

  /** The result for the whole answer so far (tokens only ever add to it). */
  update(text: string): ResultJson {
    if (text.length < this.input.rawText.length) {
      // The text was replaced rather than extended: read it again from the start.
      this.stream = createAnswerStream(...this.layout());
      this.input.rawText = '';
      this.version = -1;
    }
    const known = this.input.rawText.length;
    this.stream.push(text.slice(known));
    this.input.rawText = text;
    if (this.stream.version() !== this.version) {
      // Something the result shows has changed: place the points again.
      this.version = this.stream.version();
      this.result = buildResult(this.input, this.stream.current());
    } else {
      // Only the text grew: the points (and so the overlay's tracks) stay the same objects.
      this.result = { ...this.result, rawText: text };
    }
    return this.result;
  }
}
