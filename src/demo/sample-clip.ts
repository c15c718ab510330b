// The clip behind the first screen's "Try a sample": a demo scene the model never trained on, the
// Track question about its moving shape, and the ground truth at every time the app samples.
// Platform-free; the page encodes the frames (src/ui/video/sample-video.ts).
//
// How the clip is timed, and which frames the app sends. Scene frame k is encoded as a still that
// starts at k / fps and lasts 1 / fps (fps = 2: six stills, 0.0 … 2.5 s, the video ends at 3.0 s).
// The question is asked about the range from the first frame's time to the last frame's (0 – 2.5 s,
// what the filmstrip's Home, [, End, ] select). Molmo2's sampler (src/molmo2/video.ts sampleTimes,
// "uniform_last_frame" at ≤ 2 fps) takes arange(0, 2.5, 0.5) = 0, 0.5, 1.0, 1.5, 2.0 and appends the
// range's last instant, 2.5: six times, each presenting exactly one scene frame (frame k at k / fps),
// sent with the timestamps the demo model was trained on ("0.0" … "2.5"). Asked about the whole
// duration instead (0 – 3.0 s), the appended instant 3.0 would send frame 5 a second time, as a
// seventh frame the model never saw in training.

import { trackQA } from './scene-answers.ts';
import { frameTimeS, labelOf, makeClipScene, objectCentre, type Scene, type SceneObject, type ScenePoint, type SceneTarget } from './scenes.ts';

/**
 * The demo's test split. The splits are seeds (tools/train-demo/curriculum.ts DEMO_SPLITS): train 1,
 * held-out 2, check 3, test 4; the model trains on seed 1 only, so no test scene was trained on.
 */
export const SAMPLE_SEED = 4;
/**
 * Scene 8 of the test split (a clip index: the curriculum makes clips at indices i with i mod 10 ≥ 7):
 * on stripes, a yellow circle crosses the frame while a yellow square and a blue triangle stay put,
 * so the question names the one shape that is both yellow and round.
 */
export const SAMPLE_INDEX = 8;

/**
 * The sample's answer limit: its true answer is 93 tokens (each digit is a token: "2.5 1 631 192;" is
 * 14), so 128 leaves room for another wording while an answer that loops stops early, which matters
 * on a software GPU (SwiftShader decodes some 0.1 tokens/s). An answer cut short keeps the points it
 * completed.
 */
export const SAMPLE_ANSWER_LIMIT = 128;

export interface SampleClip {
  seed: number;
  index: number;
  scene: Scene;
  /** The shape that moves farthest: the one asked about. */
  mover: SceneObject;
  target: SceneTarget;
  /** "Track the yellow circle.", exactly as the demo's training questions ask it (trackQA). */
  question: string;
  /** The answer Molmo2's formatter writes from the ground truth: what a perfect model says. */
  answer: string;
  /** Where each scene frame sits in the encoded video: a still from `timeS` for `durationS` seconds. */
  frames: { timeS: number; durationS: number }[];
  /** The range the question is about: the first frame's time to the last frame's (seconds). */
  range: { start: number; end: number };
}

/** The object whose centre moves farthest from its first frame to its last. */
export function movingObject(scene: Scene): SceneObject {
  const travel = (o: SceneObject) => {
    const a = objectCentre(o, 0);
    const b = objectCentre(o, scene.frames - 1);
    return Math.hypot(b.x - a.x, b.y - a.y);
  };
  if (scene.objects.length === 0) throw new Error('the scene has no objects');
  return scene.objects.reduce((best, o) => (travel(o) > travel(best) ? o : best));
}

/** The sample: scene `index` of `seed` (the test split's scene 8 unless told), its question and timing. */
export function sampleClip(seed = SAMPLE_SEED, index = SAMPLE_INDEX): SampleClip {
  const scene = makeClipScene(seed, index);
  if (scene.fps === undefined) throw new Error('a sample clip needs a frame rate');
  const mover = movingObject(scene);
  const target: SceneTarget = { colour: mover.colour, shape: mover.shape };
  const twins = scene.objects.filter((o) => o.colour === target.colour && o.shape === target.shape).length;
  if (twins !== 1) throw new Error(`scene ${index} of seed ${seed}: the moving ${labelOf(target.colour, target.shape, false)} is not the only one`);
  const qa = trackQA(scene, target);
  const fps = scene.fps;
  const frames = Array.from({ length: scene.frames }, (_, k) => ({ timeS: frameTimeS(scene, k), durationS: 1 / fps }));
  return { seed, index, scene, mover, target, question: qa.question, answer: qa.answer, frames, range: { start: 0, end: frameTimeS(scene, scene.frames - 1) } };
}

/** The scene frame the encoded video presents at clip time t (each still covers [k / fps, (k + 1) / fps)). */
export function sampleFrameAt(sample: SampleClip, t: number): number {
  const fps = sample.scene.fps ?? 1;
  // The same 1 µs tolerance as the player's presentedFrameIndex (container times are not exact).
  return Math.min(sample.scene.frames - 1, Math.max(0, Math.floor((t + 1e-6) * fps)));
}

/** The moving shape's true centre (pixels of the scene's frame) at clip time t. */
export function sampleTruthAt(sample: SampleClip, t: number): ScenePoint {
  return objectCentre(sample.mover, sampleFrameAt(sample, t));
}
