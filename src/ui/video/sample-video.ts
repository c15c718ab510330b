// A demo scene (src/demo/scenes.ts) as a video file, made in the page: each scene frame is rendered
// (renderFrame, RGB) and encoded as a still of 1/fps seconds with WebCodecs through mediabunny,
// H.264 in MP4 where this browser encodes it, else VP9 or VP8 in WebM. Every frame is a key frame
// (six of them: seeking never decodes another). The file is opened once here before it is returned,
// so a codec this browser encodes but cannot decode is passed over for the next one.
// Loaded on demand ("Try a sample"), so the page's first load does not carry the muxer.
import {
  ALL_FORMATS,
  BlobSource,
  BufferTarget,
  Input,
  Mp4OutputFormat,
  Output,
  QUALITY_HIGH,
  VideoSample,
  VideoSampleSource,
  WebMOutputFormat,
  canEncodeVideo,
  type VideoCodec,
} from 'mediabunny';
import { renderFrame, type Scene } from '../../demo/scenes.ts';

/** In order of preference: MP4/H.264 plays everywhere; WebM/VP9 and VP8 where H.264 is not encoded. */
const CODECS: readonly VideoCodec[] = ['avc', 'vp9', 'vp8'];

/** RGB bytes → RGBX, a pixel format VideoFrame takes. */
function rgbx(rgb: Uint8Array, pixels: number): Uint8Array {
  const out = new Uint8Array(pixels * 4);
  for (let i = 0; i < pixels; i++) {
    out[4 * i] = rgb[3 * i];
    out[4 * i + 1] = rgb[3 * i + 1];
    out[4 * i + 2] = rgb[3 * i + 2];
    out[4 * i + 3] = 255;
  }
  return out;
}

export interface SceneVideo {
  file: File;
  codec: VideoCodec;
}

/**
 * The scene as a video: frame k from `frames[k].timeS` for `frames[k].durationS` seconds. `baseName`
 * gets the container's extension ("sample-shapes" → "sample-shapes.mp4").
 */
export async function encodeSceneVideo(scene: Scene, frames: { timeS: number; durationS: number }[], baseName: string): Promise<SceneVideo> {
  if (typeof VideoEncoder === 'undefined') throw new Error('This browser has no video encoder (WebCodecs), so the sample clip cannot be made here.');
  const { width, height } = scene;
  const pixels = frames.map((_, k) => rgbx(renderFrame(scene, k), width * height));
  const tried: string[] = [];
  for (const codec of CODECS) {
    if (!(await canEncodeVideo(codec, { width, height, quality: QUALITY_HIGH }).catch(() => false))) continue;
    try {
      const file = await encode(codec, pixels, width, height, frames, baseName);
      if (await decodes(file)) return { file, codec };
      tried.push(`${codec}: encoded, but this browser cannot decode it`);
    } catch (e) {
      tried.push(`${codec}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  throw new Error(
    `This browser cannot encode a video it can also play (H.264, VP9 or VP8), so the sample clip cannot be made here${tried.length ? ` (${tried.join('; ')})` : ''}.`,
  );
}

async function encode(codec: VideoCodec, pixels: Uint8Array[], width: number, height: number, frames: { timeS: number; durationS: number }[], baseName: string): Promise<File> {
  const mp4 = codec === 'avc';
  const target = new BufferTarget();
  const output = new Output({ format: mp4 ? new Mp4OutputFormat({ fastStart: 'in-memory' }) : new WebMOutputFormat(), target });
  const source = new VideoSampleSource({ codec, quality: QUALITY_HIGH, keyFrameInterval: 0 });
  output.addVideoTrack(source, { frameRate: 1 / frames[0].durationS });
  try {
    await output.start();
    for (let k = 0; k < frames.length; k++) {
      const sample = new VideoSample(pixels[k], { format: 'RGBX', codedWidth: width, codedHeight: height, timestamp: frames[k].timeS, duration: frames[k].durationS });
      try {
        await source.add(sample);
      } finally {
        sample.close();
      }
    }
    await output.finalize();
  } catch (e) {
    await output.cancel().catch(() => {});
    throw e;
  }
  return new File([target.buffer!], `${baseName}${output.format.fileExtension}`, { type: output.format.mimeType });
}

/** Whether this browser decodes the file's video (what the decode worker checks before opening it). */
async function decodes(file: File): Promise<boolean> {
  const input = new Input({ source: new BlobSource(file), formats: ALL_FORMATS });
  try {
    const track = await input.getPrimaryVideoTrack();
    return track !== null && (await track.canDecode());
  } catch {
    return false;
  } finally {
    input.dispose();
  }
}
