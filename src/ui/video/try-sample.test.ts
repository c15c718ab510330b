// "Try a sample" step by step, with the browser-only parts stood in for: the encoder, the decode
// worker (opening a file) and the model (loading, asking).
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { VideoInfo } from '../../../workers/decode-api.ts';
import type { Preset, ScopePlan } from '../../state/results-types.ts';

const calls = vi.hoisted(() => ({
  encode: [] as string[],
  asked: [] as { question: string; preset: Preset; scope: ScopePlan | undefined }[],
  encodeError: undefined as Error | undefined,
  openError: undefined as string | undefined,
}));

vi.mock('./sample-video.ts', () => ({
  encodeSceneVideo: async (_scene: unknown, _frames: unknown, base: string) => {
    calls.encode.push(base);
    if (calls.encodeError) throw calls.encodeError;
    return { file: new File([new Uint8Array(8)], `${base}.mp4`, { type: 'video/mp4' }), codec: 'avc' };
  },
}));

vi.mock('./open-file.ts', async () => {
  const { useVideoStore } = await import('../../state/video-store.ts');
  return {
    openVideoFile: async (file: File) => {
      if (calls.openError) return useVideoStore.getState().setError(calls.openError);
      const frameTimes = [0, 0.5, 1, 1.5, 2, 2.5];
      const info: VideoInfo = {
        fileName: file.name, fileBytes: file.size, container: 'mp4', codec: 'avc', codecString: null, width: 378, height: 378, rotation: 0,
        duration: 3, fps: 2, frameCount: 6, frameTimes,
      };
      useVideoStore.getState().setLoaded(info, file);
    },
  };
});

vi.mock('../ask/ask-run.ts', () => ({
  askQuestion: async (question: string, preset: Preset, scope: ScopePlan | undefined) => {
    calls.asked.push({ question, preset, scope });
  },
}));

vi.mock('../../app-url.ts', () => ({ appUrl: (path: string) => `http://app.test/${path}` }));

const { trySample, DEMO_MODEL_FOLDER } = await import('./try-sample.ts');
const { SAMPLE_ANSWER_LIMIT } = await import('../../demo/sample-clip.ts');
const { ANSWER_LIMITS } = await import('../ask/presets.ts');
const { useSampleStore } = await import('../../state/sample-store.ts');
const { useVideoStore } = await import('../../state/video-store.ts');
const { useModelStore } = await import('../../state/model-store.ts');
const { useAskStore } = await import('../../state/ask-store.ts');

const DEMO = { folder: DEMO_MODEL_FOLDER, name: 'Molmo2 demo', randomWeights: false, source: { repo: 'molmo2-web/demo-shapes' }, parameters: 39_799_552, variants: [{ dtype: 'q4', bytes: 1 }] };
const loaded = { name: 'Molmo2 demo', dtype: 'q4' } as unknown as NonNullable<ReturnType<typeof useModelStore.getState>['loaded']>;

/** The model store with `load` recorded, and succeeding unless told why not. */
function modelStore(state: Partial<ReturnType<typeof useModelStore.getState>>, loadError?: string) {
  const loads: string[] = [];
  useModelStore.setState({
    status: 'idle', bundled: [DEMO], loaded: undefined, error: undefined, ...state,
    load: async (source) => {
      loads.push(source.kind === 'url' ? source.url : source.kind);
      useModelStore.setState(loadError ? { status: 'error', error: loadError, loaded: undefined } : { status: 'ready', loaded });
    },
  });
  return loads;
}

beforeEach(() => {
  calls.encode.length = 0;
  calls.asked.length = 0;
  calls.encodeError = undefined;
  calls.openError = undefined;
  useSampleStore.setState({ phase: 'idle', file: null, error: undefined, question: undefined });
  useVideoStore.setState({ info: null, file: null, error: null, selection: { kind: 'none' } });
  useAskStore.setState({ status: 'idle', question: '', preset: 'ask' });
});

describe('trySample', () => {
  it('opens the clip, selects it as a range, loads the demo model, and asks the Track question about its six frames', async () => {
    const loads = modelStore({});
    await trySample();
    expect(calls.encode).toEqual(['sample-shapes']);
    const video = useVideoStore.getState();
    expect(video.file?.name).toBe('sample-shapes.mp4');
    expect(video.selection).toEqual({ kind: 'range', start: 0, end: 2.5 });
    expect(loads).toEqual([`http://app.test/models/${DEMO_MODEL_FOLDER}/`]);
    const ask = useAskStore.getState();
    expect(ask.question).toBe('Track the yellow circle.');
    expect(ask.preset).toBe('track');
    expect(ask.maxNewTokens).toBe(SAMPLE_ANSWER_LIMIT);
    // One the ask box's answer limit offers, so the box shows it.
    expect(ANSWER_LIMITS).toContain(SAMPLE_ANSWER_LIMIT);
    expect(calls.asked).toHaveLength(1);
    expect(calls.asked[0].question).toBe('Track the yellow circle.');
    expect(calls.asked[0].preset).toBe('track');
    expect(calls.asked[0].scope).toMatchObject({ kind: 'range', mode: 'video', times: [0, 0.5, 1, 1.5, 2, 2.5], frames: [0, 1, 2, 3, 4, 5], clipStartS: 0 });
    expect(useSampleStore.getState()).toMatchObject({ phase: 'done', file: video.file, question: 'Track the yellow circle.', scene: { seed: 4, index: 8 } });
  });

  it('asks with the model already loaded, loading nothing', async () => {
    const loads = modelStore({ status: 'ready', loaded });
    await trySample();
    expect(loads).toEqual([]);
    expect(calls.asked).toHaveLength(1);
    expect(useSampleStore.getState().phase).toBe('done');
  });

  it('says plainly when the demo model is not on the server, and leaves the clip open with its question', async () => {
    modelStore({ bundled: [] });
    await trySample();
    const s = useSampleStore.getState();
    expect(s.phase).toBe('failed');
    expect(s.error).toMatch(/demo model is not on this server/);
    expect(s.error).toMatch(/npm start/);
    expect(useVideoStore.getState().file).toBe(s.file);
    expect(useAskStore.getState().question).toBe('Track the yellow circle.');
    expect(calls.asked).toEqual([]);
  });

  it('says why the demo model did not load', async () => {
    modelStore({}, 'out of memory');
    await trySample();
    expect(useSampleStore.getState()).toMatchObject({ phase: 'failed', error: expect.stringMatching(/could not be loaded: out of memory/) });
    expect(calls.asked).toEqual([]);
  });

  it('keeps the open video when the clip cannot be made or opened, and says why once', async () => {
    modelStore({});
    const previous = new File([new Uint8Array(4)], 'mine.mp4');
    useVideoStore.setState({ file: previous });
    calls.encodeError = new Error('This browser has no video encoder');
    await trySample();
    expect(useSampleStore.getState()).toMatchObject({ phase: 'failed', file: null, error: 'The sample clip could not be made: This browser has no video encoder' });
    expect(useVideoStore.getState().file).toBe(previous);

    calls.encodeError = undefined;
    calls.openError = '“sample-shapes.mp4” could not be opened: broken';
    await trySample();
    expect(useSampleStore.getState()).toMatchObject({ phase: 'failed', file: null, error: 'The sample clip could not be opened: “sample-shapes.mp4” could not be opened: broken' });
    expect(useVideoStore.getState().file).toBe(previous);
    expect(useVideoStore.getState().error).toBeNull();
    expect(calls.asked).toEqual([]);
  });

  it('does nothing while a question runs or a sample is under way', async () => {
    modelStore({});
    useAskStore.setState({ status: 'running' });
    await trySample();
    useAskStore.setState({ status: 'idle' });
    useSampleStore.setState({ phase: 'model' });
    await trySample();
    expect(calls.encode).toEqual([]);
  });
});
