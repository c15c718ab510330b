// Typed interface of the export worker (comlink): burns the overlay into a copy of the video.
import type { MarkerOptions, OverlayTrack } from '../src/overlay/overlay-model.ts';

export interface AnnotateRequest {
  file: File;
  tracks: OverlayTrack[];
  settings: MarkerOptions;
  /** Text of the count badge, if any. */
  badge?: string;
  /** Frames [first, last] (0-based, inclusive) to export. */
  firstFrame: number;
  lastFrame: number;
}

export interface AnnotateProgress {
  framesDone: number;
  framesTotal: number;
}

export interface AnnotatedVideo {
  data: ArrayBuffer;
  mimeType: string;
  extension: string;
  codec: string;
  frames: number;
}

export interface AnnotateApi {
  /** Encodes the frames with the overlay drawn on them; rejects with code 'cancelled' after cancel(). */
  annotate(request: AnnotateRequest, onProgress: (p: AnnotateProgress) => void): Promise<AnnotatedVideo>;
  cancel(): void;
}
