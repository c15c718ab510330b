// Training-only attention targets for the demo model: for each point an answer writes, the answer
// positions that predict its "x y" digits, and the image tokens whose pooling window covers the object
// the point is on. train.py adds a loss that asks a few decoder heads to put their attention there
// (--attend-weight). Without it the model never found the shapes: the coordinates cost the same with
// or without the picture, so the loss sat at the "guess from the question" plateau for thousands of
// steps (tools/train-demo/README.md). The shipped model is an ordinary Molmo2 checkpoint: nothing here
// reaches inference.
import { imagePatchMap, type ImagePlan } from '../../src/molmo2/image.ts';
import type { ProcessorSettings } from '../../src/molmo2/config.ts';
import { frameTimeS, objectCentre, type Scene } from '../../src/demo/scenes.ts';
import { timestampText } from '../../src/demo/scene-answers.ts';

/** Answer positions [from, to) (whose next-token predictions are one point's x and y digits) and the image-token positions they should read. */
export interface AttentionTarget {
  from: number;
  to: number;
  keys: number[];
  /** The point as written, 0–1000. */
  x: number;
  y: number;
}

/** One written point: which frame, the 0–1000 coordinates, and the characters of "x y" in the answer. */
export interface WrittenPoint {
  frame: number;
  x: number;
  y: number;
  start: number;
  end: number;
}

/**
 * The points of an answer's `coords="…"`, with where their "x y" text lies. Points grammar:
 * `image idx x y idx x y`; tracks grammar: groups `t idx x y` split by ";", t a timestamp of the clip.
 */
export function writtenPoints(answer: string, scene: Scene): WrittenPoint[] {
  const m = /coords="([^"]*)"/.exec(answer);
  if (!m) return [];
  const base = m.index + 'coords="'.length;
  const points: WrittenPoint[] = [];
  let offset = base;
  for (const group of m[1].split(';')) {
    const words = [...group.matchAll(/\S+/g)].map((w) => ({ text: w[0], at: offset + w.index! }));
    offset += group.length + 1;
    if ((words.length - 1) % 3 !== 0) throw new Error(`coords group "${group}" is not a head and (idx, x, y) triples`);
    let frame = 0;
    if (scene.kind === 'clip') {
      frame = Array.from({ length: scene.frames }, (_, k) => timestampText(frameTimeS(scene, k))).indexOf(words[0].text);
      if (frame < 0) throw new Error(`timestamp ${words[0].text} is no frame of the clip`);
    }
    for (let i = 1; i < words.length; i += 3) {
      const x = words[i + 1];
      const y = words[i + 2];
      points.push({ frame, x: Number(x.text), y: Number(y.text), start: x.at, end: y.at + y.text.length });
    }
  }
  return points;
}

/** Pixel centre and frame of every ViT patch of a sample (flattened crop·patch numbering), by how the app lays them out. */
export function patchCentres(scene: Scene, patchesPerSide: number, settings: ProcessorSettings, plan?: Pick<ImagePlan, 'rows' | 'cols' | 'numCrops'>): { frame: number; x: number; y: number }[] {
  const n = patchesPerSide;
  const perCrop = n * n;
  const grid = (frame: number) =>
    Array.from({ length: perCrop }, (_, i) => ({ frame, x: ((i % n) + 0.5) * (scene.width / n), y: (Math.floor(i / n) + 0.5) * (scene.height / n) }));
  if (scene.kind === 'clip') return Array.from({ length: scene.frames }, (_, k) => grid(k)).flat();
  if (!plan) throw new Error('an image scene needs its plan');
  if (scene.width !== scene.height) throw new Error('the global view of a non-square image is padded; these centres assume a square scene');
  // Global view: the whole image squeezed into one crop. Hi-res view: the processor's patch map.
  const centres = grid(0);
  const hi = imagePatchMap(plan, 0, settings);
  const hiRes = new Array<{ frame: number; x: number; y: number }>(perCrop * (plan.numCrops - 1));
  for (let r = 0; r < hi.h; r++) {
    for (let c = 0; c < hi.w; c++) {
      hiRes[hi.map[r * hi.w + c] - perCrop] = { frame: 0, x: (c + 0.5) * (scene.width / hi.w), y: (r + 0.5) * (scene.height / hi.h) };
    }
  }
  return [...centres, ...hiRes];
}

export interface AttentionTargetInput {
  scene: Scene;
  answer: string;
  /** Answer tokens (without <|im_end|>), as the sample appends them. */
  answerIds: number[];
  encode: (text: string) => number[];
  answerStart: number;
  inputIds: Int32Array;
  imagePatchId: number;
  pooledIdx: Int32Array;
  poolSize: number;
  centres: { frame: number; x: number; y: number }[];
}

/** The attention targets of one sample (none for answers without points). */
export function attentionTargets(o: AttentionTargetInput): AttentionTarget[] {
  const points = writtenPoints(o.answer, o.scene);
  if (!points.length) return [];
  const patchTokens: number[] = [];
  o.inputIds.forEach((id, pos) => id === o.imagePatchId && patchTokens.push(pos));
  const rows = o.pooledIdx.length / o.poolSize;
  if (rows !== patchTokens.length) throw new Error(`${patchTokens.length} <im_patch> tokens but ${rows} pooled rows`);
  const tokenAt = (chars: number) => {
    const prefix = o.encode(o.answer.slice(0, chars));
    if (prefix.some((id, i) => id !== o.answerIds[i])) throw new Error(`the answer does not tokenize the same up to character ${chars}`);
    return prefix.length;
  };
  return points.map((p) => {
    const px = (p.x / 1000) * o.scene.width;
    const py = (p.y / 1000) * o.scene.height;
    const obj = o.scene.objects.reduce((best, cur) => {
      const d = (q: typeof cur) => Math.hypot(objectCentre(q, p.frame).x - px, objectCentre(q, p.frame).y - py);
      return d(cur) < d(best) ? cur : best;
    });
    const centre = objectCentre(obj, p.frame);
    // A token is a target when a patch of its window has its centre on the object (size is the circumradius).
    const keys = patchTokens.filter((_, row) => {
      for (let j = 0; j < o.poolSize; j++) {
        const patch = o.pooledIdx[row * o.poolSize + j];
        if (patch < 0) continue;
        const c = o.centres[patch];
        if (c.frame === p.frame && Math.hypot(c.x - centre.x, c.y - centre.y) <= obj.size) return true;
      }
      return false;
    });
    if (!keys.length) throw new Error(`no image token covers the object at (${centre.x}, ${centre.y}) on frame ${p.frame}`);
    // Positions whose next-token predictions are the digits from x's first to y's last.
    return { from: o.answerStart + tokenAt(p.start) - 1, to: o.answerStart + tokenAt(p.end) - 1, keys, x: p.x, y: p.y };
  });
}
