// Videos in Node for the batch tool: what a file holds (ffprobe) and the frames presented at sampled
// times (one ffmpeg process per video), with the app's time → frame rule (src/molmo2/video.ts).
//
// The figures follow the app's decode worker (workers/decode.worker.ts) for the same file: times are
// seconds from the first frame's presentation time, sorted; duration = end of the last frame (its
// time + duration) − first time; fps = (frames − 1) / (last time − first time). They may differ where
// mediabunny and ffmpeg read a file differently: the worker lists packets from the index while this
// lists the frames ffmpeg decodes (a damaged packet that does not decode is in the worker's list, not
// here); WebM frames without a stored duration get ffmpeg's guess for the last one; edit lists are
// applied by ffmpeg's demuxer. Pixels may differ from the browser's by a few levels (YUV → RGB is
// ffmpeg's swscale here, the browser's own there), and a non-square pixel aspect ratio is not applied
// by either.
import { spawn } from 'node:child_process';
import { mkdtemp, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { isVariableFrameRate, presentedFrameIndex } from '../../src/molmo2/video.ts';
import type { SampledFrame } from './types.ts';

export interface VideoProbe {
  /** The file's base name. */
  name: string;
  /** Display size: the rotation metadata applied (90° / 270° swap width and height). */
  width: number;
  height: number;
  durationS: number;
  /** Frames per second; null for a variable frame rate (or a single frame). */
  fps: number | null;
  /** Presentation time of every decoded frame, ascending, seconds from the first frame. */
  frameTimestampsS: number[];
  decodedFrameCount: number;
  /** Something to know about a file that did open (e.g. fewer frames decoded than its index lists). */
  notice?: string;
}

/** A file that cannot be read; the message names it and says why. */
export class VideoReadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VideoReadError';
  }
}

const ffmpegPath = () => process.env.FFMPEG_PATH ?? '/usr/bin/ffmpeg';
const ffprobePath = () => process.env.FFPROBE_PATH ?? '/usr/bin/ffprobe';

interface Ran {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs a tool to its end; stdout goes to `onData` when given (frames can be large), else is kept. */
function run(tool: string, args: string[], onData?: (chunk: Buffer) => void): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => (onData ? onData(b) : out.push(b)));
    // Only the end of stderr says why it failed; a damaged file can print an error per frame.
    child.stderr.on('data', (b: Buffer) => (err = (err + b.toString('utf8')).slice(-4000)));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') {
        const which = tool === ffprobePath() ? 'ffprobe' : 'ffmpeg';
        const env = which === 'ffprobe' ? 'FFPROBE_PATH' : 'FFMPEG_PATH';
        reject(new VideoReadError(`${which} was not found at ${tool}; the batch tool reads videos with it. Install it with \`apt install ffmpeg\` (or set ${env} to where it is).`));
      } else reject(e);
    });
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
  });
}

const quote = (path: string) => `“${basename(path)}”`;

/** The last meaningful line ffmpeg printed, for a message. */
const lastLine = (stderr: string) => stderr.trim().split('\n').filter(Boolean).at(-1)?.replace(/^\[[^\]]*\]\s*/, '') ?? '';

interface Stream {
  index: number;
  codec_type?: string;
  width?: number;
  height?: number;
  nb_frames?: string;
  disposition?: { attached_pic?: number };
  side_data_list?: { rotation?: number }[];
  tags?: { rotate?: string };
}

/** Clockwise display rotation in degrees (display matrix, or the older `rotate` tag), 0–270. */
function rotationOf(s: Stream): number {
  const r = s.side_data_list?.find((d) => typeof d.rotation === 'number')?.rotation ?? Number(s.tags?.rotate ?? 0);
  return ((Math.round(r / 90) * 90) % 360 + 360) % 360;
}

async function checkFile(path: string): Promise<void> {
  let size: number;
  try {
    const s = await stat(path);
    if (s.isDirectory()) throw new VideoReadError(`${quote(path)} is a folder, not a video file.`);
    size = s.size;
  } catch (e) {
    if (e instanceof VideoReadError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new VideoReadError(`${quote(path)} was not found (${path}).`);
    throw new VideoReadError(`${quote(path)} could not be read: ${(e as Error).message}`);
  }
  if (size === 0) throw new VideoReadError(`${quote(path)} is empty (0 bytes).`);
}

/** The file's first video stream (cover art is not a video), or the plain reason there is none. */
async function videoStream(path: string): Promise<Stream> {
  const r = await run(ffprobePath(), ['-v', 'error', '-hide_banner', '-print_format', 'json', '-show_format', '-show_streams', path]);
  const unrecognised = () => new VideoReadError(`${quote(path)} is not a video this tool can read: its format was not recognised (the file may be damaged, or not a video at all).`);
  if (r.code !== 0) {
    // ffmpeg tries the MP4 reader on any file named .mp4: only a file that starts like one is cut short.
    if (/moov atom not found/i.test(r.stderr) && (await startsLikeMp4(path))) {
      throw new VideoReadError(`${quote(path)} is incomplete: its index (the MP4 "moov" box) is missing, so it is probably cut short (an interrupted download?) or damaged.`);
    }
    if (/Invalid data found|moov atom not found|could not find codec parameters|unknown format/i.test(r.stderr)) throw unrecognised();
    throw new VideoReadError(`${quote(path)} could not be opened: ${lastLine(r.stderr) || `ffprobe exited with ${r.code}`}`);
  }
  const info = JSON.parse(r.stdout.toString('utf8')) as { streams?: Stream[]; format?: { format_name?: string } };
  // ffmpeg shows any text file as "ANSI art" (the tty format); nobody means that as a video.
  if (info.format?.format_name === 'tty') throw unrecognised();
  const streams = info.streams ?? [];
  const video = streams.find((s) => s.codec_type === 'video' && !s.disposition?.attached_pic);
  if (video) return video;
  if (streams.some((s) => s.codec_type === 'audio')) throw new VideoReadError(`${quote(path)} has only audio, no video track.`);
  if (streams.length === 0) throw new VideoReadError(`${quote(path)} has no readable tracks: it is probably incomplete (a download cut short?) or damaged.`);
  throw new VideoReadError(`${quote(path)} has no video track.`);
}

/** Whether the file begins with an ISO-BMFF box (ftyp, moov, mdat, free, …): an MP4 / MOV file. */
async function startsLikeMp4(path: string): Promise<boolean> {
  const file = await open(path, 'r');
  try {
    const head = Buffer.alloc(8);
    await file.read(head, 0, 8, 0);
    return ['ftyp', 'moov', 'mdat', 'free', 'skip', 'wide', 'pnot'].includes(head.toString('latin1', 4, 8));
  } finally {
    await file.close();
  }
}

/** Reads a video's size, times and frame rate. Decodes the whole video once (ffprobe) to list its frames. */
export async function probeVideo(path: string): Promise<VideoProbe> {
  await checkFile(path);
  const stream = await videoStream(path);
  // Every decoded frame's time: the frames that ffmpeg's select filter counts (readFramesAt).
  const r = await run(ffprobePath(), [
    ...['-v', 'error', '-hide_banner', '-select_streams', String(stream.index)],
    // pkt_duration_time before ffmpeg 6, duration_time after; an unknown name is ignored.
    ...['-show_entries', 'frame=pts_time,best_effort_timestamp_time,pkt_duration_time,duration_time', '-of', 'compact=p=0', path],
  ]);
  const frames: { t: number; d: number }[] = [];
  for (const line of r.stdout.toString('utf8').split('\n')) {
    const f = Object.fromEntries(line.split('|').map((kv) => kv.split('=') as [string, string]));
    // A frame without a presentation time has the decoder's best guess (ffprobe's best_effort).
    const t = Number(f.pts_time !== undefined && f.pts_time !== 'N/A' ? f.pts_time : f.best_effort_timestamp_time);
    if (!Number.isFinite(t)) continue;
    const d = Number(f.duration_time ?? f.pkt_duration_time);
    frames.push({ t, d: Number.isFinite(d) && d > 0 ? d : 0 });
  }
  if (frames.length === 0) {
    const why = lastLine(r.stderr);
    throw new VideoReadError(`${quote(path)} has a video track but no frame could be decoded: it is damaged or cut short${why ? ` (${why})` : ''}.`);
  }
  frames.sort((a, b) => a.t - b.t);
  const first = frames[0].t;
  const frameTimestampsS = frames.map((f) => f.t - first);
  const last = frameTimestampsS[frameTimestampsS.length - 1];
  const regular = frames.length > 1 ? (frames.length - 1) / (last || 1) : 0;
  const end = frames.reduce((e, f) => Math.max(e, f.t + (f.d || (regular > 0 ? 1 / regular : 0))), first) - first;
  const rotation = rotationOf(stream);
  const [w, h] = [stream.width ?? 0, stream.height ?? 0];
  const listed = Number(stream.nb_frames);
  return {
    name: basename(path),
    width: rotation % 180 === 90 ? h : w,
    height: rotation % 180 === 90 ? w : h,
    durationS: end,
    fps: frames.length > 1 && !isVariableFrameRate(frameTimestampsS) ? regular : null,
    frameTimestampsS,
    decodedFrameCount: frames.length,
    notice:
      Number.isInteger(listed) && listed > frames.length
        ? `${quote(path)} is damaged or cut short: only ${frames.length} of its ${listed} frames could be decoded. Using those ${frames.length}.`
        : undefined,
  };
}

/**
 * The frames presented at `times` (seconds on the probe's axis: 0 = the first frame), in order, as
 * RGBA bytes or JPEG files, at display size with the rotation applied. One ffmpeg process decodes the
 * video up to the last frame needed and keeps only the wanted frames (select on the decoded frame
 * number); it decodes from the start, so a late range of a long video costs the decoding before it.
 */
export async function readFramesAt(path: string, probe: VideoProbe, times: number[], format: 'rgba' | 'jpeg'): Promise<SampledFrame[]> {
  const index = times.map((t) => presentedFrameIndex(t, probe.frameTimestampsS));
  if (index.some((i) => i < 0)) throw new VideoReadError(`${quote(path)} has no frames to read.`);
  const wanted = [...new Set(index)].sort((a, b) => a - b);
  if (wanted.length === 0) return [];
  await checkFile(path);
  const stream = await videoStream(path);
  const select = `select='${wanted.map((k) => `eq(n,${k})`).join('+')}'`;
  const common = [
    ...['-v', 'error', '-hide_banner', '-nostdin', '-i', path, '-map', `0:${stream.index}`, '-vf', select],
    // One output frame per selected frame: no frame-rate conversion, stop after the last one.
    ...['-fps_mode', 'passthrough', '-frames:v', String(wanted.length)],
  ];
  const { width, height } = probe;
  let pictures: { rgba?: Uint8Array; jpeg?: Uint8Array }[];
  if (format === 'rgba') {
    const frameBytes = width * height * 4;
    const all = new Uint8Array(frameBytes * wanted.length);
    let at = 0;
    const r = await run(ffmpegPath(), [...common, '-sws_flags', 'bicubic+accurate_rnd+full_chroma_int', '-f', 'rawvideo', '-pix_fmt', 'rgba', 'pipe:1'], (chunk) => {
      const n = Math.min(chunk.length, all.length - at);
      all.set(chunk.subarray(0, n), at);
      at += chunk.length;
    });
    if (at > all.length || at % frameBytes !== 0) {
      throw new VideoReadError(`${quote(path)}: ffmpeg gave ${at} bytes of frames, not whole ${width}×${height} frames (${frameBytes} bytes each); its size may change within the video, which this tool does not handle.`);
    }
    failIfShort(path, r, at / frameBytes, wanted);
    pictures = wanted.map((_, k) => ({ rgba: all.subarray(k * frameBytes, (k + 1) * frameBytes) }));
  } else {
    const dir = await mkdtemp(join(tmpdir(), 'molmo2-frames-'));
    try {
      const r = await run(ffmpegPath(), [...common, '-c:v', 'mjpeg', '-q:v', '2', '-f', 'image2', '-start_number', '0', join(dir, '%06d.jpg')]);
      const files = (await readdir(dir)).sort();
      failIfShort(path, r, files.length, wanted);
      pictures = await Promise.all(files.map(async (f) => ({ jpeg: new Uint8Array(await readFile(join(dir, f))) })));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const byIndex = new Map(wanted.map((k, i) => [k, pictures[i]]));
  return times.map((timeS, i) => ({ timeS, frame: index[i], width, height, ...byIndex.get(index[i])! }));
}

function failIfShort(path: string, r: Ran, got: number, wanted: number[]): void {
  if (got === wanted.length) return;
  if (r.code === 0 && got > wanted.length) throw new VideoReadError(`${quote(path)}: ffmpeg gave ${got} frames for ${wanted.length} asked for.`);
  const missing = wanted.slice(got);
  const why = lastLine(r.stderr);
  throw new VideoReadError(
    `${quote(path)} is damaged or changed since it was probed: frame${missing.length === 1 ? '' : 's'} ${missing.join(', ')} could not be decoded${why ? ` (${why})` : ''}.`,
  );
}
