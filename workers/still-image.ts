// A still image (PNG, JPEG, WebP, …) opened like a video of one frame at 0 s, so that a question about
// it is asked, drawn, kept and exported like a question about a video frame.
import type { VideoInfo } from './decode-api.ts';

const IMAGE_NAME = /\.(png|jpe?g|webp|gif|bmp|avif)$/i;

export function isStillImage(file: File): boolean {
  return file.type.startsWith('image/') || (!file.type && IMAGE_NAME.test(file.name));
}

export interface StillImage {
  info: VideoInfo;
  /** The image, at its size or scaled to `height` pixels high. */
  frame(height?: number): Promise<ImageBitmap>;
}

export async function openStillImage(file: File, maxPixels: number): Promise<StillImage> {
  if (file.size === 0) throw new Error(`“${file.name}” is empty (0 bytes).`);
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  } catch {
    throw new Error(`“${file.name}” is not an image this browser can read (the file may be damaged).`);
  }
  const { width, height } = bitmap;
  if (width * height > maxPixels) {
    bitmap.close();
    throw new Error(`“${file.name}” is ${width}×${height}, larger than this app can use (at most ${Math.round(maxPixels / 1e6)} megapixels). Scale it down first.`);
  }
  const info: VideoInfo = {
    fileName: file.name,
    fileBytes: file.size,
    container: 'image',
    codec: file.type.replace(/^image\//, '') || 'image',
    codecString: null,
    width,
    height,
    rotation: 0,
    duration: 0,
    fps: 0,
    frameCount: 1,
    frameTimes: [0],
  };
  return {
    info,
    frame: (h) =>
      h ? createImageBitmap(bitmap, { resizeHeight: h, resizeWidth: Math.max(1, Math.round((width * h) / height)), resizeQuality: 'high' }) : createImageBitmap(bitmap),
  };
}
