// Ask state: the question and preset, and the progress of the last request (stage, timings, error).
// The answer itself lives in its run (results-store), the one place it is kept. A question goes to
// the model on this device, or, while "Answer on a server" is on (server-store.ts), to that server.
import * as Comlink from 'comlink';
import { create } from 'zustand';
import type { AskEvent, AskVisual, DoneEvent, StageTimings } from '../../workers/inference-api.ts';
import type { Preset } from './results-types.ts';
import type { ChatTurn } from '../molmo2/chat-template.ts';
import { inference } from '../ui/model/inference-client.ts';
import { useModelStore } from './model-store.ts';
import { loadRates, markEvent, ratesAfter, saveRates, startMarks, type Marks, type Rates } from '../ui/ask/stage-estimate.ts';
import { DEFAULT_MAX_NEW_TOKENS } from '../molmo2/config.ts';
import { serverTarget, type ServerChoice } from './server-store.ts';
import { askOnServer, cancelServerAsk } from '../ui/ask/server-client.ts';
import type { ServerAskRequest, ServerTarget } from '../../workers/server-ask-api.ts';

/** Measured rates are kept per model and dtype: they belong to this device's GPU (../ui/ask/stage-estimate.ts). */
const rateKey = () => {
  const m = useModelStore.getState().loaded;
  return m ? `${m.id}:${m.dtype}` : undefined;
};

export type AskStatus = 'idle' | 'running' | 'done' | 'cancelled' | 'error';

export interface AskOptions {
  question?: string;
  /** Earlier turns of the conversation, for a follow-up. */
  history?: ChatTurn[];
  maxNewTokens?: number;
  /** The run the answer is kept in. */
  runId?: string;
  /** Video times of the frames (an answer server is told them in images mode too). */
  frameTimes?: number[];
  /** Called with the whole answer so far after each token. */
  onText?(text: string): void;
}

/** A finished question; `server` when an answer server answered it (its timings are then all zero). */
export type AskDone = DoneEvent & { server?: { host: string; encodeMs: number; serverMs: number } };

export interface AskState {
  question: string;
  preset: Preset;
  status: AskStatus;
  /** 'server': sent, waiting for the answer server. */
  stage?: 'preprocess' | 'vision' | 'prefill' | 'decode' | 'server';
  /** The answer server of the running or last question (host), with its time once answered. */
  servedBy?: { host: string; ms?: number };
  /** The run of the last question (its result holds the answer). */
  runId?: string;
  /** The answer to a question asked with no video or image open: it has no run to be kept in. */
  unattachedAnswer?: string;
  promptTokens?: number;
  /** Progress within the stage (frames or crops done of all), when the worker reports it. */
  stageProgress?: { done: number; total: number };
  timings?: StageTimings;
  /** When the running question's events arrived, and the rates kept from earlier runs: its time estimate. */
  marks?: Marks;
  rates?: Rates;
  /** The answer limit (max new tokens) of the next question: the preset's, or the user's choice. */
  maxNewTokens: number;
  setMaxNewTokens(n: number): void;
  error?: string;
  /** Begun, its frames still being gathered: the worker does not have it yet. */
  gathering?: boolean;
  /** The next question continues the conversation of the run it can follow up (../ui/ask/thread.ts). */
  followUp: boolean;
  setFollowUp(on: boolean): void;
  setQuestion(q: string): void;
  setPreset(p: Preset): void;
  /**
   * Marks a question as running while its frames are gathered, so that the box shows it at once and
   * Esc or a second Enter see it; false when another question is running.
   */
  begin(runId?: string): boolean;
  /** Runs one question (begun by `begin` or here); resolves with the final event, or undefined when it failed (see `error`). */
  ask(visual: AskVisual, opts?: AskOptions): Promise<AskDone | undefined>;
  fail(message: string): void;
  cancel(): void;
}

function transferables(v: AskVisual): Transferable[] {
  const bitmaps = v.kind === 'images' ? v.images : v.kind === 'video' ? v.frames.map((f) => f.image) : [];
  return bitmaps.filter((b): b is ImageBitmap => typeof ImageBitmap !== 'undefined' && b instanceof ImageBitmap);
}

export const errorText = (e: unknown) => ((e as Error)?.message ?? String(e)).replace(/^Error: /, '');

export const useAskStore = create<AskState>()((set, get) => ({
  question: '',
  preset: 'ask',
  status: 'idle',
  followUp: false,
  setFollowUp: (followUp) => set({ followUp }),
  setQuestion: (question) => set({ question }),
  setPreset: (preset) => set({ preset }),
  maxNewTokens: DEFAULT_MAX_NEW_TOKENS,
  setMaxNewTokens: (n) => set({ maxNewTokens: Math.max(1, Math.min(DEFAULT_MAX_NEW_TOKENS, Math.round(n))) }),

  begin(runId) {
    if (get().status === 'running') return false;
    const server = serverTarget();
    // Rates measured on this device's GPU say nothing about a server's.
    const key = server ? undefined : rateKey();
    set({
      status: 'running', gathering: true, stage: 'preprocess', runId, unattachedAnswer: undefined, timings: undefined, error: undefined, promptTokens: undefined, stageProgress: undefined,
      marks: startMarks(performance.now()), rates: key ? loadRates(key) : undefined, servedBy: server ? { host: server.host } : undefined,
    });
    return true;
  },

  async ask(visual, opts = {}) {
    const question = (opts.question ?? get().question).trim();
    if (!question) return undefined;
    const begun = get().status === 'running' && get().gathering && get().runId === opts.runId;
    if (!begun && !get().begin(opts.runId)) return undefined;
    set({ gathering: false });
    const unattached = opts.runId === undefined;
    const onEvent = (e: AskEvent) => {
      const marks = get().marks;
      if (marks) set({ marks: markEvent(marks, e, performance.now()) });
      if (e.type === 'stage') {
        const { done, total } = e as { done?: number; total?: number };
        set({ stage: e.stage, promptTokens: e.promptTokens ?? get().promptTokens, stageProgress: done !== undefined && total ? { done, total } : undefined });
      }
      else if (e.type === 'token') {
        if (unattached) set({ unattachedAnswer: e.text });
        opts.onText?.(e.text);
      }
    };
    try {
      const request = { question, visual, maxNewTokens: opts.maxNewTokens ?? get().maxNewTokens, ...(opts.history?.length ? { history: opts.history } : {}) };
      // The server chosen when the question began: turning it off meanwhile ends the question, never reroutes it.
      const server = get().servedBy ? serverTarget() : undefined;
      if (get().servedBy && !server) throw new Error('The question was stopped: answering on the server was turned off.');
      if (server) {
        const done = await askServer(server, request, opts.frameTimes, (e) => {
          if (e.type === 'stage' && e.stage === 'encode') set({ stage: 'preprocess', stageProgress: { done: e.done, total: e.total } });
          else set({ stage: 'server', stageProgress: undefined });
        });
        // The whole answer at once (not streamed): the run reads it as it would the last token's text.
        if (done.text) opts.onText?.(done.text);
        set({ status: done.stoppedBy === 'cancel' ? 'cancelled' : 'done', stage: undefined, servedBy: { host: server.host, ms: done.server?.serverMs }, ...(unattached ? { unattachedAnswer: done.text } : {}) });
        return done;
      }
      // The model worker crashed (and was replaced) while the frames were gathered: say why, rather
      // than let the fresh worker answer "no model is loaded".
      const model = useModelStore.getState();
      if (!model.loaded && model.error) throw new Error(model.error);
      const done = await inference().ask(Comlink.transfer(request, transferables(visual)), Comlink.proxy(onEvent));
      const key = rateKey();
      if (key && get().marks) saveRates(key, ratesAfter(get().rates, get().marks!, done.timings));
      set({ status: done.stoppedBy === 'cancel' ? 'cancelled' : 'done', timings: done.timings, stage: undefined, ...(unattached ? { unattachedAnswer: done.text } : {}) });
      return done;
    } catch (e) {
      get().fail(errorText(e));
      return undefined;
    }
  },

  fail: (error) => set({ status: 'error', error, stage: undefined, gathering: false }),

  cancel() {
    // Stopped while its frames are gathered: the page stops it, the question never reaches the model.
    if (get().gathering) set({ status: 'cancelled', stage: undefined, gathering: false });
    if (get().servedBy) cancelServerAsk();
    else void inference().cancel();
  },
}));

/** One question to the answer server: the same frames, times, question and turns the local model would get. */
async function askServer(
  server: ServerTarget & ServerChoice,
  request: { question: string; visual: AskVisual; maxNewTokens: number; history?: ChatTurn[] },
  frameTimes: number[] | undefined,
  onEvent: Parameters<typeof askOnServer>[2],
): Promise<AskDone> {
  const { visual } = request;
  const frames: ServerAskRequest['frames'] =
    visual.kind === 'video'
      ? visual.frames.map((f) => ({ image: f.image, timeS: f.timestamp }))
      : visual.kind === 'images'
        ? visual.images.map((image, k) => ({ image, timeS: frameTimes?.[k] ?? 0 }))
        : [];
  const answer = await askOnServer(
    server.origin,
    {
      server: { baseUrl: server.baseUrl, model: server.model, ...(server.apiKey ? { apiKey: server.apiKey } : {}) },
      question: request.question,
      maxNewTokens: request.maxNewTokens,
      mode: visual.kind === 'video' ? 'video' : 'images',
      frames,
      ...(request.history?.length ? { history: request.history } : {}),
    },
    onEvent,
  );
  const timings: StageTimings = {
    preprocessMs: 0, visionMs: 0, prefillMs: 0, decodeMs: 0, promptTokens: 0, generatedTokens: 0, prefillTokensPerSecond: 0, decodeTokensPerSecond: 0,
    timeToFirstTokenMs: 0, visualItems: frames.length, visionEncoded: 0, visionCacheHits: 0, prefixReusedTokens: 0, prefillTokens: 0, preprocess: 'none', visionStageMs: 0,
  };
  return { type: 'done', text: answer.text, tokens: [], stoppedBy: answer.stoppedBy, timings, server: { host: server.host, encodeMs: answer.encodeMs, serverMs: answer.serverMs } };
}
