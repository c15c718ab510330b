// MolmoPoint's grounding tokens, as the official HF remote code defines them
// (allenai/molmo2 olmo/hf_model/modeling_molmo_point.py: GeneratedTokenBounds, MolmoPointLogitProcessor,
// get_subpatch_ids, extract_image_points, extract_video_points). Instead of writing coordinates as
// text, MolmoPoint answers each point with three generated ids past the vocabulary:
//   patch     which image token (a pooled patch) the point is in, or "no more points";
//   subpatch  which ViT patch of that token's pooling window;
//   location  where in that 14-px patch, on a 3×3 grid;
// followed by the object's number as text. The tokenizer writes these ids as `<POINT_k>`, k counted
// from the first id past the vocabulary. Platform-free; the fp32 reference scores the three choices
// (reference/molmopoint.ts), the graphs that would do it in the app are not built yet (the converter
// refuses MolmoPoint checkpoints: conversion.ts).

/** Where each kind of grounding id lies in the generated vocabulary (GeneratedTokenBounds). */
export interface PointTokenBounds {
  /** First grounding id: vocab_size + additional_vocab_size (`<POINT_0>`). */
  patchStart: number;
  /** End of the patch ids that name an image token. */
  patchEndWithoutNoMorePoints: number;
  /** "No more points" (−1 when the model has no such class). */
  noMorePoints: number;
  patchEnd: number;
  subpatchStart: number;
  subpatchEnd: number;
  locationStart: number;
  locationEnd: number;
  nPatches: number;
  nSubpatches: number;
  nLocations: number;
}

export function pointTokenBounds(o: { firstId: number; nPatches: number; nSubpatches: number; locations: boolean; noMorePointsClass: boolean }): PointTokenBounds {
  const nLocations = o.locations ? 9 : 0;
  const patchEnd = o.firstId + o.nPatches + (o.noMorePointsClass ? 1 : 0);
  return {
    patchStart: o.firstId,
    patchEndWithoutNoMorePoints: o.firstId + o.nPatches,
    noMorePoints: o.noMorePointsClass ? o.firstId + o.nPatches : -1,
    patchEnd,
    subpatchStart: patchEnd,
    subpatchEnd: patchEnd + o.nSubpatches,
    locationStart: patchEnd + o.nSubpatches,
    locationEnd: patchEnd + o.nSubpatches + nLocations,
    nPatches: o.nPatches,
    nSubpatches: o.nSubpatches,
    nLocations,
  };
}

/** The generation rules a checkpoint enables (mask_repeats / mask_patches / mask_subpatches at inference). */
export interface PointRules {
  preventRepeats: boolean;
  forcePatchSorted: boolean;
  forceSubpatchSorted: boolean;
}

/**
 * Masks `scores` (the logits of the next token, length ≥ locationEnd) so the grounding ids come in a
 * valid order after `ids` (the sequence so far, prompt included): patch → subpatch → location; no
 * point after "no more points"; optionally points in patch order, subpatches in order within a
 * patch, and no repeated point. In place; masked entries become −∞.
 */
export function constrainPointLogits(b: PointTokenBounds, ids: ArrayLike<number>, scores: Float32Array, rules: PointRules): void {
  const mask = (from: number, to: number) => scores.fill(-Infinity, Math.max(0, from), Math.max(0, to));
  const n = ids.length;
  // The ids of a point still being written (the last one or two) do not count as complete.
  const completeUpTo = n - (b.nLocations ? 2 : 1);
  let lastPatch: number | undefined;
  let lastSubpatch: number | undefined;
  let noMore = false;
  for (let i = 0; i < n; i++) {
    const id = ids[i];
    if (id === b.noMorePoints) noMore = true;
    if (i >= completeUpTo) continue;
    if (id >= b.patchStart && id < b.patchEnd) lastPatch = id;
    if (id >= b.subpatchStart && id < b.subpatchEnd) lastSubpatch = id;
  }
  const last = n ? ids[n - 1] : -1;
  if (noMore) {
    mask(b.patchStart, b.locationEnd);
  } else if (last < b.patchStart || last >= b.subpatchEnd) {
    // Between points: no subpatch or location; maybe a patch.
    mask(b.subpatchStart, b.locationEnd);
    if (rules.forcePatchSorted && lastPatch !== undefined) mask(b.patchStart, lastPatch);
    // The last patch again could only repeat the previous point when its subpatch was the last one.
    if (rules.preventRepeats && rules.forceSubpatchSorted && lastSubpatch !== undefined && lastSubpatch === b.subpatchEnd - 1 && lastPatch !== undefined) scores[lastPatch] = -Infinity;
  } else if (last >= b.patchStart && last < b.patchEnd) {
    // After a patch: a subpatch.
    mask(0, b.subpatchStart);
    mask(b.subpatchEnd, scores.length);
    if (rules.forceSubpatchSorted && lastPatch === last) {
      if (lastSubpatch === undefined) throw new Error('internal: a repeated patch without an earlier subpatch');
      mask(b.subpatchStart, rules.preventRepeats ? lastSubpatch + 1 : lastSubpatch);
    }
  } else if (b.nLocations && last >= b.subpatchStart && last < b.subpatchEnd) {
    // After a subpatch: a location.
    mask(0, b.locationStart);
    mask(b.locationEnd, scores.length);
  } else {
    throw new Error(`internal: id ${last} after a point has no rule`);
  }
}

/** One point as the answer writes it: the ViT patch, its 3×3 location and the object's number. */
export interface PointChoice {
  vitPatch: number;
  location: number;
  object: number;
}

const POINT_TRIPLE = /<POINT_(\d+)> ?<POINT_(\d+)> ?<POINT_(\d+)> ?([0-9]+)/g;

/**
 * The points of an answer's text (`<POINT_p> <POINT_s> <POINT_l> n` …): the patch's pooling window
 * (`pooling`, [nPatches, poolSize] absolute ViT patch indices) gives the ViT patch of subpatch s.
 */
export function pointChoices(text: string, pooling: Int32Array, poolSize: number, noMorePointsClass: boolean): PointChoice[] {
  const nPatches = pooling.length / poolSize + (noMorePointsClass ? 1 : 0);
  const out: PointChoice[] = [];
  for (const m of text.matchAll(POINT_TRIPLE)) {
    const patch = Number(m[1]);
    const subpatch = Number(m[2]) - nPatches;
    const location = Number(m[3]) - nPatches - poolSize;
    if (patch < 0 || patch * poolSize >= pooling.length || subpatch < 0 || subpatch >= poolSize) continue;
    out.push({ vitPatch: pooling[patch * poolSize + subpatch], location, object: Number(m[4]) });
  }
  return out;
}

/** A grid of absolute ViT patch indices over an image or frame (row-major [h, w]). */
export interface PatchMap {
  map: Int32Array;
  h: number;
  w: number;
}

/**
 * The centre of the chosen 3×3 cell in patch units within the map: location l is column ⌊l/3⌋, row
 * l mod 3, each cell 0.33 of a patch (the reference's constant, not 1/3).
 */
function inPatch(location: number): { dx: number; dy: number } {
  return { dx: (Math.floor(location / 3) + 0.5) * 0.33, dy: ((location % 3) + 0.5) * 0.33 };
}

export interface ImagePoint {
  object: number;
  image: number;
  /** Pixels of the source image. */
  x: number;
  y: number;
}

/**
 * Image points from the answer text: each ViT patch is looked up in the images' hi-res patch maps
 * (`maps[i]`, absolute indices) and turned into pixels of image i (`sizes[i]` = [width, height]).
 * A patch no map holds (e.g. one of the global view) gives no point, as in the reference.
 */
export function extractImagePoints(text: string, pooling: Int32Array, poolSize: number, maps: PatchMap[], sizes: [number, number][], noMorePointsClass: boolean): ImagePoint[] {
  if (maps.length !== sizes.length) throw new Error('one patch map per image size is needed');
  const out: ImagePoint[] = [];
  for (const c of pointChoices(text, pooling, poolSize, noMorePointsClass)) {
    for (let i = 0; i < maps.length; i++) {
      const at = maps[i].map.indexOf(c.vitPatch);
      if (at < 0) continue;
      const { dx, dy } = inPatch(c.location);
      const px = (at % maps[i].w) + dx;
      const py = Math.floor(at / maps[i].w) + dy;
      out.push({ object: c.object, image: i, x: (px / maps[i].w) * sizes[i][0], y: (py / maps[i].h) * sizes[i][1] });
      break;
    }
  }
  return out;
}

export interface VideoPoint {
  object: number;
  /** Seconds: the sampled frame's timestamp. */
  time: number;
  x: number;
  y: number;
}

/**
 * Video points: frame f's ViT patches are f·patches² … (f+1)·patches² − 1 (the reference's
 * arange mapping over [frames, patches, patches]); positions scale to `size` = [width, height].
 */
export function extractVideoPoints(text: string, pooling: Int32Array, poolSize: number, timestamps: number[], patchesPerSide: number, size: [number, number], noMorePointsClass: boolean): VideoPoint[] {
  const perFrame = patchesPerSide * patchesPerSide;
  const out: VideoPoint[] = [];
  for (const c of pointChoices(text, pooling, poolSize, noMorePointsClass)) {
    const frame = Math.floor(c.vitPatch / perFrame);
    if (c.vitPatch < 0 || frame >= timestamps.length) continue;
    const within = c.vitPatch % perFrame;
    const { dx, dy } = inPatch(c.location);
    out.push({
      object: c.object,
      time: timestamps[frame],
      x: (((within % patchesPerSide) + dx) / patchesPerSide) * size[0],
      y: ((Math.floor(within / patchesPerSide) + dy) / patchesPerSide) * size[1],
    });
  }
  return out;
}
