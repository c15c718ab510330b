// COCO Keypoints 1.0 with TAO-style video fields: one image per sampled frame, one
// single-keypoint category per label, one annotation per point with `track_id` (also under
// `attributes.track_id`, as CVAT writes it). A point becomes keypoints [x, y, 2] (2 = visible) and a
// small box centred on it (COCO tools need a non-empty box and area).

import type { ResultJson } from './result.ts';

export interface CocoOptions {
  /** Side in pixels of the box around each point. */
  boxSize?: number;
}

export interface CocoKeypoints {
  info: { description: string; version: string; date_created: string };
  videos: { id: number; name: string; width: number; height: number; length: number }[];
  images: { id: number; video_id: number; file_name: string; width: number; height: number; frame_index: number; time_s: number }[];
  categories: { id: number; name: string; supercategory: string; keypoints: string[]; skeleton: number[][] }[];
  tracks: { id: number; category_id: number; video_id: number }[];
  annotations: {
    id: number;
    image_id: number;
    category_id: number;
    track_id: number;
    keypoints: number[];
    num_keypoints: number;
    bbox: number[];
    area: number;
    iscrowd: 0;
    attributes: { track_id: number };
  }[];
}

export function exportCocoKeypoints(result: ResultJson, opts: CocoOptions = {}): CocoKeypoints {
  const box = opts.boxSize ?? 1;
  const { video } = result;
  const frameName = (f: number) => `frame_${String(f).padStart(6, '0')}.jpg`;
  // One image per distinct sampled frame; ids are 1-based.
  const imageByFrame = new Map<number, CocoKeypoints['images'][number]>();
  video.sampledFrames.forEach((frame, i) => {
    if (frame >= 0 && !imageByFrame.has(frame)) {
      imageByFrame.set(frame, { id: imageByFrame.size + 1, video_id: 1, file_name: frameName(frame), width: video.width, height: video.height, frame_index: frame, time_s: video.sampledTimesS[i] });
    }
  });
  const labels = [...new Set(result.points.map((p) => p.label ?? 'object'))];
  const categories = labels.map((name, i) => ({ id: i + 1, name, supercategory: 'object', keypoints: ['point'], skeleton: [] }));
  const categoryOf = (label: string | null) => labels.indexOf(label ?? 'object') + 1;

  const annotations: CocoKeypoints['annotations'] = [];
  const tracks = new Map<string, CocoKeypoints['tracks'][number]>();
  for (const p of result.points) {
    let image = imageByFrame.get(p.frame);
    if (!image) {
      // A point on a frame that was not among the sampled ones (only when the timeline was unknown).
      image = { id: imageByFrame.size + 1, video_id: 1, file_name: frameName(p.frame), width: video.width, height: video.height, frame_index: p.frame, time_s: p.timeS };
      imageByFrame.set(p.frame, image);
    }
    const category_id = categoryOf(p.label);
    tracks.set(`${p.trackId}/${category_id}`, { id: p.trackId, category_id, video_id: 1 });
    annotations.push({
      id: annotations.length + 1,
      image_id: image.id,
      category_id,
      track_id: p.trackId,
      keypoints: [p.xPx, p.yPx, 2],
      num_keypoints: 1,
      bbox: [p.xPx - box / 2, p.yPx - box / 2, box, box],
      area: box * box,
      iscrowd: 0,
      attributes: { track_id: p.trackId },
    });
  }
  return {
    info: { description: `${result.model.id}: ${result.query.text}`, version: String(result.version), date_created: result.createdAt },
    videos: [{ id: 1, name: video.name, width: video.width, height: video.height, length: video.decodedFrameCount }],
    images: [...imageByFrame.values()],
    categories,
    tracks: [...tracks.values()],
    annotations,
  };
}
