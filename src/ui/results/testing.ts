// Test data for the unit tests of the results and ask-box logic: a 3 s, 10 fps, 320×240 clip.
import type { VideoInfo } from '../../../workers/decode-api.ts';

export const CLIP_INFO: VideoInfo = {
  fileName: 'clip.mp4',
  fileBytes: 1000,
  container: 'mp4',
  codec: 'avc',
  codecString: null,
  width: 320,
  height: 240,
  rotation: 0,
  duration: 3,
  fps: 10,
  frameCount: 30,
  frameTimes: Array.from({ length: 30 }, (_, i) => i / 10),
};
