// Export worker: decodes the video in order, draws the overlay on each frame (the same marker model
// as the page), and encodes an MP4 (H.264) or, where the browser cannot encode H.264, a WebM (VP9/VP8)
// with WebCodecs through mediabunny. Runs off the main thread; cancel() stops it within a frame.
// An opened image gets an annotated PNG instead (annotate-still.ts).
import * as Comlink from 'comlink';
import {
  ALL_FORMATS,
  BlobSource,
  BufferTarget,
  CanvasSink,
  CanvasSource,
  Input,
  Mp4OutputFormat,
  Output,
  QUALITY_HIGH,
  WebMOutputFormat,
  getFirstEncodableVideoCodec,
} from 'mediabunny';
import { drawMarkers } from '../src/overlay/draw-overlay.ts';
import { markerRadius, markersAt } from '../src/overlay/overlay-model.ts';
import type { AnnotateApi } from './annotate-api.ts';
import { annotateStillImage } from './annotate-still.ts';
import { isStillImage } from './still-image.ts';
import { WorkerError } from './worker-error.ts';
import { installErrorTransfer } from './error-transfer.ts';

installErrorTransfer();

let cancelled = false;

const api: AnnotateApi = {
  async annotate(req, onProgress) {
    cancelled = false;
    if (isStillImage(req.file)) return annotateStillImage(req);
    const input = new Input({ source: new BlobSource(req.file), formats: ALL_FORMATS });
    let output: Output | undefined;
    try {
      const track = await input.getPrimaryVideoTrack();
      if (!track) throw new WorkerError('bad-input', 'The video has no video track.');
      const width = track.displayWidth;
      const height = track.displayHeight;
      // Encoders want even sizes.
      const outW = width - (width % 2);
      const outH = height - (height % 2);
      const codec = await getFirstEncodableVideoCodec(['avc', 'vp9', 'vp8'], { width: outW, height: outH });
      if (!codec) throw new WorkerError('unsupported', 'This browser cannot encode video (no H.264, VP9 or VP8 encoder).');
      const mp4 = codec === 'avc';
      const target = new BufferTarget();
      output = new Output({ format: mp4 ? new Mp4OutputFormat({ fastStart: 'in-memory' }) : new WebMOutputFormat(), target });
      const canvas = new OffscreenCanvas(outW, outH);
      const ctx = canvas.getContext('2d')!;
      const source = new CanvasSource(canvas, { codec, bitrate: QUALITY_HIGH, keyFrameInterval: 2 });
      output.addVideoTrack(source);
      await output.start();

      const first = await track.getFirstTimestamp();
      const sink = new CanvasSink(track, { poolSize: 2 });
      const r = markerRadius(width, height);
      const total = req.lastFrame - req.firstFrame + 1;
      let done = 0;
      let frame = -1;
      let startT: number | undefined;
      // Frames come in presentation order, so the k-th one is the decode worker's frame k.
      for await (const wrapped of sink.canvases()) {
        frame++;
        if (frame < req.firstFrame) continue;
        if (frame > req.lastFrame || cancelled) break;
        const t = wrapped.timestamp - first;
        startT ??= t;
        ctx.drawImage(wrapped.canvas, 0, 0);
        drawMarkers(ctx, markersAt(req.tracks, frame, t, req.settings), r, req.badge);
        await source.add(t - startT, wrapped.duration);
        done++;
        if (done % 5 === 0 || done === total) onProgress({ framesDone: done, framesTotal: total });
      }
      if (cancelled) throw new WorkerError('cancelled', 'cancelled');
      await output.finalize();
      const data = target.buffer!;
      return Comlink.transfer({ data, mimeType: output.format.mimeType, extension: output.format.fileExtension, codec, frames: done }, [data]);
    } catch (e) {
      await output?.cancel().catch(() => {});
      throw e instanceof Error ? e : new Error(String(e));
    } finally {
      input.dispose();
    }
  },
  cancel() {
    cancelled = true;
  },
};

Comlink.expose(api);
