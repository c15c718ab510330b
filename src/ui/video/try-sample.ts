// "Try a sample" (the first screen): makes the sample clip — a demo scene the model never trained on
// (src/demo/sample-clip.ts), encoded in this page (sample-video.ts) — opens it the way a picked file
// is opened, selects it as a range, loads the demo model when no model is loaded, puts the Track
// question in the ask box and asks it. Each step that fails says why and leaves the app as it was,
// the sample clip open once it opened.
import { SAMPLE_ANSWER_LIMIT, sampleClip } from '../../demo/sample-clip.ts';
import { errorText, useAskStore } from '../../state/ask-store.ts';
import { useModelStore, type ModelState } from '../../state/model-store.ts';
import { sampleBusy, useSampleStore } from '../../state/sample-store.ts';
import { serverTarget } from '../../state/server-store.ts';
import { useVideoStore } from '../../state/video-store.ts';
import { appUrl } from '../../app-url.ts';
import { askQuestion } from '../ask/ask-run.ts';
import { openVideoFile } from './open-file.ts';
import { planScope } from './scope.ts';

/** The bundled demo model's folder (public/models/<folder>, made by `npm start`). */
export const DEMO_MODEL_FOLDER = 'molmo2-demo-shapes';
/** The sample file's name, before the container's extension. */
export const SAMPLE_FILE_BASE = 'sample-shapes';

const fail = (error: string) => useSampleStore.getState().update({ phase: 'failed', error });

/** Resolves once the model store is neither starting (reading the models on offer) nor loading. */
function modelSettled(): Promise<ModelState> {
  const settled = (s: ModelState) => s.status !== 'starting' && s.status !== 'loading';
  const now = useModelStore.getState();
  if (settled(now)) return Promise.resolve(now);
  return new Promise((resolve) => {
    const stop = useModelStore.subscribe((s) => {
      if (!settled(s)) return;
      stop();
      resolve(s);
    });
  });
}

/** A model to answer with: the loaded one, the answer server while it is on, else the bundled demo model. Undefined when ready, else why not. */
async function ensureModel(): Promise<string | undefined> {
  if (serverTarget()) return undefined;
  const settled = await modelSettled();
  if (settled.loaded) return undefined;
  const demo = settled.bundled.find((b) => b.folder === DEMO_MODEL_FOLDER);
  if (!demo) {
    return (
      `The demo model is not on this server (no models/${DEMO_MODEL_FOLDER}/), so the sample clip is open but nothing answers it here. ` +
      'Run “npm start”, which builds the demo model, and reload; or load a model in the Model panel and ask.'
    );
  }
  useSampleStore.getState().update({ phase: 'model' });
  await useModelStore.getState().load({ kind: 'url', url: appUrl(`models/${DEMO_MODEL_FOLDER}/`) }, demo.name);
  const after = useModelStore.getState();
  return after.loaded ? undefined : `The demo model could not be loaded: ${after.error ?? 'no reason given'}. The sample clip stays open.`;
}

export async function trySample(): Promise<void> {
  if (sampleBusy(useSampleStore.getState().phase) || useAskStore.getState().status === 'running') return;
  const sample = sampleClip();
  useSampleStore.getState().update({ phase: 'making', error: undefined, file: null, question: sample.question, scene: { seed: sample.seed, index: sample.index } });

  let file: File;
  try {
    const { encodeSceneVideo } = await import('./sample-video.ts');
    ({ file } = await encodeSceneVideo(sample.scene, sample.frames, SAMPLE_FILE_BASE));
  } catch (e) {
    return fail(`The sample clip could not be made: ${errorText(e)}`);
  }

  useSampleStore.getState().update({ phase: 'opening', file });
  await openVideoFile(file);
  const video = useVideoStore.getState();
  if (video.file !== file || !video.info) {
    // The decode worker's message is the reason; it is said once, here.
    const reason = video.error;
    if (reason) video.setError(null);
    return useSampleStore.getState().update({ phase: 'failed', error: `The sample clip could not be opened${reason ? `: ${reason}` : '.'}`, file: null });
  }
  // The whole clip, first frame's time to last frame's: the sampler then takes each frame once
  // (src/demo/sample-clip.ts says why not the whole duration).
  const { frameTimes } = video.info;
  video.selectRange(frameTimes[0], frameTimes[frameTimes.length - 1]);
  const ask = useAskStore.getState();
  ask.setPreset('track');
  ask.setQuestion(sample.question);
  ask.setMaxNewTokens(SAMPLE_ANSWER_LIMIT);

  const notReady = await ensureModel();
  if (notReady) return fail(notReady);
  // The user may have opened another video meanwhile: then the sample is theirs to ask or not.
  if (useVideoStore.getState().file !== file) return useSampleStore.getState().update({ phase: 'idle' });
  const plan = planScope('range');
  if (!plan || plan.kind !== 'range') return fail('The sample clip is no longer selected as a range; select it and ask again.');
  if (useAskStore.getState().status === 'running') return fail('Another question is running; ask the sample’s question when it is done.');

  useSampleStore.getState().update({ phase: 'asking' });
  await askQuestion(sample.question, 'track', plan);
  const after = useAskStore.getState();
  if (after.status === 'error') return fail(`The question failed: ${after.error ?? 'no reason given'}`);
  useSampleStore.getState().update({ phase: 'done' });
}
