// Decode worker: demuxes with mediabunny and decodes with WebCodecs, off the main thread.
import * as Comlink from 'comlink';
import { ALL_FORMATS, BlobSource, CanvasSink, EncodedPacketSink, Input, type InputVideoTrack } from 'mediabunny';
import { formatTime, presentedFrameIndex } from '../src/molmo2/video.ts';
import type { DecodeApi, VideoInfo } from './decode-api.ts';
import { isStillImage, openStillImage, type StillImage } from './still-image.ts';
import { WorkerError } from './worker-error.ts';
import { installErrorTransfer } from './error-transfer.ts';

installErrorTransfer();

// WebCodecs and canvases have per-browser limits; beyond this the page would run out of memory.
const MAX_PIXELS = 8192 * 8192;

interface Opened {
  input: Input;
  track: InputVideoTrack;
  info: VideoInfo;
  sinks: Map<number, CanvasSink>;
}

let current: Opened | null = null;
/** An open still image (then `current` is null). */
let still: StillImage | null = null;

/** A file this app cannot open; the message names it and says why. */
const unreadable = (message: string) => new WorkerError('bad-input', message);

async function probe(file: File): Promise<Opened> {
  if (file.size === 0) throw unreadable(`“${file.name}” is empty (0 bytes).`);
  const input = new Input({ source: new BlobSource(file), formats: ALL_FORMATS });
  try {
    let format;
    try {
      format = await input.getFormat();
    } catch {
      throw unreadable(`“${file.name}” is not a video this app can read: its format was not recognised (the file may be damaged, or not a video at all).`);
    }
    if ((await input.getTracks()).length === 0) {
      // E.g. an MP4 cut short before its index (moov), which ffmpeg and most cameras write last.
      throw unreadable(`“${file.name}” has no readable tracks: it is probably incomplete (a download cut short?) or damaged.`);
    }
    const track = await input.getPrimaryVideoTrack();
    if (!track) {
      const audio = await input.getPrimaryAudioTrack().catch(() => null);
      throw unreadable(audio ? `“${file.name}” has only audio, no video track.` : `“${file.name}” has no video track.`);
    }
    const codec = track.codec ?? 'unknown';
    const codecString = await track.getCodecParameterString().catch(() => null);
    // Size first: a decoder asked about a huge frame may just say "unsupported", which hides why.
    if (track.displayWidth * track.displayHeight > MAX_PIXELS) {
      throw unreadable(
        `“${file.name}” is ${track.displayWidth}×${track.displayHeight}, larger than this app can decode (at most ${Math.round(MAX_PIXELS / 1e6)} megapixels, e.g. 8192×8192). Scale it down first, e.g. to 3840×2160.`,
      );
    }
    if (!(await track.canDecode())) {
      throw new WorkerError('unsupported', `This browser cannot decode the ${codec.toUpperCase()} video in “${file.name}”${codecString ? ` (${codecString})` : ''}. Try an H.264, VP9 or AV1 file.`);
    }
    // One pass over the index (no sample data is read): timestamps in decode order.
    const first = await track.getFirstTimestamp();
    const listed: { timestamp: number; end: number }[] = [];
    for await (const packet of new EncodedPacketSink(track).packets(undefined, undefined, { metadataOnly: true })) {
      listed.push({ timestamp: packet.timestamp, end: packet.timestamp + packet.duration });
    }
    // A WebM cut short keeps its header's Duration but loses the clusters past the cut (the demuxer
    // drops a cluster that is not whole): compare what the header says with what is there.
    const declared = await input.getDurationFromMetadata().catch(() => null);
    if (listed.length === 0) {
      throw unreadable(
        declared && declared > 0
          ? `“${file.name}” is cut short before its first complete frame: its header says it lasts ${formatTime(declared)}, but no frame is whole in the file (an interrupted download?). Nothing to show.`
          : `“${file.name}” has a video track but no frames in it (nothing to show).`,
      );
    }
    const kept = await packetsInFile(new EncodedPacketSink(track), listed.map((p) => p.timestamp));
    if (kept === 0) throw unreadable(`“${file.name}” is cut short before its first frame (an interrupted download?): nothing to show.`);
    const present = listed.slice(0, kept);
    const frameTimes = present.map((p) => p.timestamp - first).sort((a, b) => a - b);
    const duration = kept < listed.length ? present.reduce((end, p) => Math.max(end, p.end), 0) - first : (await track.computeDuration()) - first;
    const fps = frameTimes.length > 1 ? (frameTimes.length - 1) / (frameTimes[frameTimes.length - 1] - frameTimes[0] || 1) : 0;
    // Short of the declared end by more than a frame: first the video's end, then (only then) every
    // track's end, since a longer audio track is not a cut.
    const shortOfDeclared = (end: number) => declared !== null && declared - end > 0.25 + (fps > 0 ? 1 / fps : 0);
    const tailMissing =
      kept === listed.length && shortOfDeclared(first + duration) && shortOfDeclared(await input.computeDuration().catch(() => Infinity));
    const info: VideoInfo = {
      fileName: file.name,
      fileBytes: file.size,
      container: format.name,
      codec,
      codecString,
      width: track.displayWidth,
      height: track.displayHeight,
      rotation: track.rotation,
      duration,
      fps,
      frameCount: frameTimes.length,
      frameTimes,
      notice:
        kept < listed.length
          ? `“${file.name}” is cut short: only ${kept} of its ${listed.length} frames are in the file (an interrupted download?). Showing those ${kept}.`
          : tailMissing
            ? `“${file.name}” is cut short: its header says it lasts ${formatTime(declared ?? 0)}, but the frames in the file end at ${formatTime(duration)} (an interrupted download?). Showing those ${kept}.`
            : undefined,
    };
    // Decode the first frame now so a file that demuxes but cannot decode fails here, not later.
    const opened: Opened = { input, track, info, sinks: new Map() };
    const check = await sinkFor(opened).getCanvas(first);
    if (!check) throw unreadable(`“${file.name}”: its first frame could not be decoded (the file may be damaged or cut short).`);
    return opened;
  } catch (e) {
    input.dispose();
    // The messages above name the file already; anything else is said about the file.
    if (e instanceof WorkerError) throw e;
    throw unreadable(`“${file.name}” could not be opened: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * How many of the packets (timestamps in decode order) have their data in the file. Samples are stored
 * in decode order, so a file cut short loses a tail of them: check the last, then binary-search the
 * cut (a few single-packet reads, never the whole file).
 */
async function packetsInFile(sink: EncodedPacketSink, timestamps: number[]): Promise<number> {
  const has = async (k: number) => (await sink.getPacket(timestamps[k])) !== null;
  if (await has(timestamps.length - 1)) return timestamps.length;
  let lo = 0;
  let hi = timestamps.length - 1; // invariant: every packet before lo has data, packet hi has none
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (await has(mid)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function sinkFor(o: Opened, height?: number): CanvasSink {
  const key = height ?? 0;
  let sink = o.sinks.get(key);
  if (!sink) {
    sink = new CanvasSink(o.track, height ? { height, fit: 'contain' } : {});
    o.sinks.set(key, sink);
  }
  return sink;
}

function need(): Opened {
  if (!current) throw new Error('No video is open.');
  return current;
}

async function toBitmap(canvas: HTMLCanvasElement | OffscreenCanvas): Promise<ImageBitmap> {
  return createImageBitmap(canvas);
}

const api: DecodeApi = {
  async open(file) {
    if (isStillImage(file)) {
      const image = await openStillImage(file, MAX_PIXELS).catch((e: Error) => Promise.reject(unreadable(e.message)));
      current?.input.dispose();
      current = null;
      still = image;
      return image.info;
    }
    const next = await probe(file);
    current?.input.dispose();
    current = next;
    still = null;
    return next.info;
  },

  async frameAt(index, height) {
    if (still) return Comlink.transfer(await still.frame(height), []);
    const o = need();
    const i = Math.min(Math.max(0, Math.round(index)), o.info.frameCount - 1);
    const first = await o.track.getFirstTimestamp();
    const wrapped = await sinkFor(o, height).getCanvas(first + o.info.frameTimes[i]);
    if (!wrapped) throw new Error(`Frame ${i} could not be decoded.`);
    return Comlink.transfer(await toBitmap(wrapped.canvas), []);
  },

  async framesAt(times, height) {
    if (still) {
      const frames = await Promise.all(times.map(() => still!.frame(height)));
      return Comlink.transfer(frames, frames);
    }
    const o = need();
    const first = await o.track.getFirstTimestamp();
    // Address each frame by its own timestamp so the decoder returns exactly the presented frame.
    const stamps = times.map((t) => first + o.info.frameTimes[presentedFrameIndex(t, o.info.frameTimes)]);
    const out: ImageBitmap[] = [];
    for await (const wrapped of sinkFor(o, height).canvasesAtTimestamps(stamps)) {
      if (!wrapped) throw new Error('A requested frame could not be decoded.');
      out.push(await toBitmap(wrapped.canvas));
    }
    return Comlink.transfer(out, out);
  },

  async thumbnails(count, height) {
    const info = still?.info ?? need().info;
    const n = Math.max(1, Math.min(count, info.frameCount));
    const times = Array.from({ length: n }, (_, k) => (n === 1 ? 0 : (k * info.duration) / n));
    const bitmaps = await api.framesAt(times, height);
    return Comlink.transfer(
      bitmaps.map((bitmap, k) => ({ time: times[k], bitmap })),
      bitmaps,
    );
  },
};

Comlink.expose(api);
