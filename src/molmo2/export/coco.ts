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
  info: { year: number; version: string; description: string; contributor: string; url: string; date_created: string };
  licenses: { id: number; name: string; url: string }[];
  videos: { id: number; name: string; width: number; height: number; length: number }[];
  images: {
    id: number;
    video_id: number;
    file_name: string;
    width: number;
    height: number;
    license: number;
    flickr_url: string;
    coco_url: string;
    date_captured: string;
    frame_index: number;
    time_s: number;
  }[];
  categories: { id: number; name: string; supercategory: string; keypoints: string[]; skeleton: number[][] }[];
  tracks: { id: number; category_id: number; video_id: number }[];
  annotations: {
    id: number;
    image_id: number;
    category_id: number;
    track_id: number;
    segmentation: number[][];
    keypoints: number[];
    num_keypoints: number;
    bbox: number[];
    area: number;
    iscrowd: 0;
    attributes: { track_id: number };
  }[];
}

/** The frames are the user's own: no licence is implied. */
const LICENSE_UNSPECIFIED = { id: 1, name: 'unspecified', url: '' };

export function exportCocoKeypoints(result: ResultJson, opts: CocoOptions = {}): CocoKeypoints {
  const box = opts.boxSize ?? 1;
  const { video } = result;
  const frameName = (f: number) => `frame_${String(f).padStart(6, '0')}.jpg`;
  // The format's per-image fields that have no meaning for a local video frame get neutral values.
  const image = (id: number, frame: number, timeS: number): CocoKeypoints['images'][number] => ({
    id,
    video_id: 1,
    file_name: frameName(frame),
    width: video.width,
    height: video.height,
    license: LICENSE_UNSPECIFIED.id,
    flickr_url: '',
    coco_url: '',
    date_captured: result.createdAt,
    frame_index: frame,
    time_s: timeS,
  });
  // One image per distinct sampled frame; ids are 1-based.
  const imageByFrame = new Map<number, CocoKeypoints['images'][number]>();
  video.sampledFrames.forEach((frame, i) => {
    if (frame >= 0 && !imageByFrame.has(frame)) {
      imageByFrame.set(frame, image(imageByFrame.size + 1, frame, video.sampledTimesS[i]));
    }
  });
  const labels = [...new Set(result.points.map((p) => p.label ?? 'object'))];
  const categories = labels.map((name, i) => ({ id: i + 1, name, supercategory: 'object', keypoints: ['point'], skeleton: [] }));
  const categoryOf = (label: string | null) => labels.indexOf(label ?? 'object') + 1;

  const annotations: CocoKeypoints['annotations'] = [];
  const tracks = new Map<string, CocoKeypoints['tracks'][number]>();
  for (const p of result.points) {
    let pointImage = imageByFrame.get(p.frame);
    if (!pointImage) {
      // A point on a frame that was not among the sampled ones (only when the timeline was unknown).
      pointImage = image(imageByFrame.size + 1, p.frame, p.timeS);
      imageByFrame.set(p.frame, pointImage);
    }
    const category_id = categoryOf(p.label);
    tracks.set(`${p.trackId}/${category_id}`, { id: p.trackId, category_id, video_id: 1 });
    annotations.push({
      id: annotations.length + 1,
      image_id: pointImage.id,
      category_id,
      track_id: p.trackId,
      segmentation: [], // a point has no mask
      keypoints: [p.xPx, p.yPx, 2],
      num_keypoints: 1,
      bbox: [p.xPx - box / 2, p.yPx - box / 2, box, box],
      area: box * box,
      iscrowd: 0,
      attributes: { track_id: p.trackId },
    });
  }
  return {
    info: {
      year: new Date(result.createdAt).getUTCFullYear(),
      version: String(result.version),
      description: `${result.model.id}: ${result.query.text}`,
      contributor: result.app.name,
      url: '',
      date_created: result.createdAt,
    },
    licenses: [LICENSE_UNSPECIFIED],
    videos: [{ id: 1, name: video.name, width: video.width, height: video.height, length: video.decodedFrameCount }],
    images: [...imageByFrame.values()],
    categories,
    tracks: [...tracks.values()],
    annotations,
  };
}
