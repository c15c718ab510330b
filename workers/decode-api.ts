// Typed interface of the decode worker (comlink). The worker owns the demuxer and the decoder; the UI
// and the inference path ask it for frames by index or time.

export interface VideoInfo {
  fileName: string;
  fileBytes: number;
  container: string;
  /** Codec name (e.g. "avc", "vp9") and the full codec string when known. */
  codec: string;
  codecString: string | null;
  /** Display size with the rotation applied. */
  width: number;
  height: number;
  rotation: 0 | 90 | 180 | 270;
  duration: number;
  fps: number;
  frameCount: number;
  /** Presentation timestamps of every frame, ascending, seconds. */
  frameTimes: number[];
  /** Something the user should know about a file that did open (e.g. cut short: the frames that are there). */
  notice?: string;
}

export interface DecodeApi {
  /** Opens a file; on failure throws an Error whose message is meant for the user, and keeps the previous file. */
  open(file: File): Promise<VideoInfo>;
  /** The frame with this index, rotation applied, at display size (or scaled to `height`). */
  frameAt(index: number, height?: number): Promise<ImageBitmap>;
  /** The frames presented at these times (seconds), in order. */
  framesAt(times: number[], height?: number): Promise<ImageBitmap[]>;
  /** `count` thumbnails evenly spread over the video, each `height` pixels high. */
  thumbnails(count: number, height: number): Promise<{ time: number; bitmap: ImageBitmap }[]>;
}
