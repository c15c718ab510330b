// What the ask box sends with a question: the video's current frame, selected frames or a range,
// provided by whoever owns the video (the player wires one in), or a still image the user picked.
import type { AskVisual } from '../../runtime/api-types.ts';

export interface FrameSource {
  /** Short description of what would be sent now, e.g. "frame at 3.2 s" or "8 frames, 2.0–5.5 s". */
  describe(): string;
  /** The frames (with timestamps) or images to send; ImageBitmaps are transferred to the worker. */
  collect(): Promise<AskVisual>;
}

/** A still image picked from disk, decoded into an ImageBitmap. */
export function imageFileSource(file: File): FrameSource {
  return {
    describe: () => `image ${file.name}`,
    async collect() {
      const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
      return { kind: 'images', images: [bitmap] };
    },
  };
}
