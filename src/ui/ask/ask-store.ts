// Ask box state: the question, the streamed answer, the stage and timings of the last request.
import * as Comlink from 'comlink';
import { create } from 'zustand';
import type { AskEvent, AskVisual, StageTimings } from '../../runtime/api-types.ts';
import { inference } from '../model/inference-client.ts';

export type AskStatus = 'idle' | 'running' | 'done' | 'cancelled' | 'error';

export interface AskState {
  question: string;
  status: AskStatus;
  stage?: 'preprocess' | 'vision' | 'prefill' | 'decode';
  answer: string;
  promptTokens?: number;
  timings?: StageTimings;
  error?: string;
  setQuestion(q: string): void;
  ask(visual: AskVisual, maxNewTokens?: number): Promise<void>;
  cancel(): void;
}

function transferables(v: AskVisual): Transferable[] {
  const bitmaps = v.kind === 'images' ? v.images : v.kind === 'video' ? v.frames.map((f) => f.image) : [];
  return bitmaps.filter((b): b is ImageBitmap => typeof ImageBitmap !== 'undefined' && b instanceof ImageBitmap);
}

export const useAskStore = create<AskState>()((set, get) => ({
  question: '',
  status: 'idle',
  answer: '',
  setQuestion: (question) => set({ question }),

  async ask(visual, maxNewTokens) {
    const question = get().question.trim();
    if (!question || get().status === 'running') return;
    set({ status: 'running', stage: 'preprocess', answer: '', timings: undefined, error: undefined, promptTokens: undefined });
    const onEvent = (e: AskEvent) => {
      if (e.type === 'stage') set({ stage: e.stage, promptTokens: e.promptTokens ?? get().promptTokens });
      else if (e.type === 'token') set({ answer: e.text });
    };
    try {
      const request = { question, visual, maxNewTokens };
      const done = await inference().ask(Comlink.transfer(request, transferables(visual)), Comlink.proxy(onEvent));
      set({ status: done.stoppedBy === 'cancel' ? 'cancelled' : 'done', answer: done.text, timings: done.timings, stage: undefined });
    } catch (e) {
      set({ status: 'error', error: ((e as Error)?.message ?? String(e)).replace(/^Error: /, ''), stage: undefined });
    }
  },

  cancel() {
    void inference().cancel();
  },
}));
