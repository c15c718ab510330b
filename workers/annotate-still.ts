// The annotated copy of a still image: the overlay drawn on the image, as a PNG.
import * as Comlink from 'comlink';
import { drawMarkers } from '../src/overlay/draw-overlay.ts';
import { markerRadius, markersAt } from '../src/overlay/overlay-model.ts';
import type { AnnotatedVideo, AnnotateRequest } from './annotate-api.ts';

export async function annotateStillImage(req: AnnotateRequest): Promise<AnnotatedVideo> {
  const bitmap = await createImageBitmap(req.file, { imageOrientation: 'from-image' });
  const { width, height } = bitmap;
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d')!;
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  // The image is the one frame of a one-frame "video" at 0 s.
  drawMarkers(ctx, markersAt(req.tracks, 0, 0, req.settings), markerRadius(width, height), req.badge);
  const data = await (await canvas.convertToBlob({ type: 'image/png' })).arrayBuffer();
  return Comlink.transfer({ data, mimeType: 'image/png', extension: 'png', codec: 'png', frames: 1 }, [data]);
}
