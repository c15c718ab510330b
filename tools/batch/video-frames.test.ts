// Videos read with ffprobe / ffmpeg for the batch tool: clips made here with ffmpeg whose frame index
// can be read from the pixels (a white box whose left edge is STEP · index), a variable-frame-rate
// clip, a rotated one (display matrix written into the track header), and files that cannot be read.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { presentedFrameIndex } from '../../src/molmo2/video.ts';
import { probeVideo, readFramesAt, VideoReadError } from './video-frames.ts';

const FFMPEG = process.env.FFMPEG_PATH ?? '/usr/bin/ffmpeg';
const W = 160;
const H = 48;
const STEP = 6;
const BOX = { y: 14, w: 16, h: 20 };
/** Irregular frame times of the variable-frame-rate clip (seconds). */
const VFR_TIMES = [0, 0.1, 0.15, 0.4, 0.45, 0.5, 1.0, 1.04, 1.3, 2.0];

let dir: string;
const at = (name: string) => join(dir, name);

function ffmpeg(args: string[]): void {
  const r = spawnSync(FFMPEG, ['-v', 'error', '-y', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ffmpeg failed: ${r.stderr}`);
}

/** The box clip: `frames` frames at `rate`, box left edge at STEP · index (even steps suit yuv420p). */
function boxClip(out: string, rate: number, frames: number, extra: string[] = []): void {
  ffmpeg([
    ...['-f', 'lavfi', '-i', `color=c=black:s=${W}x${H}:r=${rate}`, '-f', 'lavfi', '-i', `color=c=white:s=${BOX.w}x${BOX.h}:r=${rate}`],
    ...['-filter_complex', `[0][1]overlay=x='${STEP}*round(t*${rate})':y=${BOX.y}:shortest=1`, '-frames:v', String(frames)],
    ...['-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-g', '5', ...extra, out],
  ]);
}

/** Left edge of the white box on the middle row of an RGBA frame (−1 when there is none). */
function boxLeft(rgba: Uint8Array, width: number, row: number): number {
  for (let x = 0; x < width; x++) if (rgba[(row * width + x) * 4] > 128) return x;
  return -1;
}

/** Rotates the only track's display matrix by `degrees` clockwise (as phones write it), frames untouched. */
function rotate(src: string, out: string, degrees: 90): void {
  const bytes = readFileSync(src);
  const tkhd = bytes.indexOf('tkhd') - 4;
  const matrix = tkhd + (bytes[tkhd + 8] === 1 ? 60 : 48);
  // a b u / c d v / tx ty w: a–d, tx, ty in 16.16, w in 2.30 (ISO/IEC 14496-12, TrackHeaderBox).
  [0, 1, 0, -1, 0, 0, H, 0].forEach((v, i) => bytes.writeInt32BE(v * 65536, matrix + 4 * i));
  bytes.writeInt32BE(1 << 30, matrix + 32);
  writeFileSync(out, bytes);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'video-frames-'));
  boxClip(at('box10.mp4'), 10, 20);
  boxClip(at('box-faststart.mp4'), 10, 20, ['-movflags', '+faststart']);
  const pts = VFR_TIMES.reduceRight((rest, t, n) => `if(eq(N\\,${n})\\,${t}\\,${rest})`, '0');
  ffmpeg([
    ...['-f', 'lavfi', '-i', `color=c=black:s=${W}x${H}:r=10`, '-f', 'lavfi', '-i', `color=c=white:s=${BOX.w}x${BOX.h}:r=10`],
    ...['-filter_complex', `[0][1]overlay=x='${STEP}*round(t*10)':y=${BOX.y}:shortest=1,settb=1/1000,setpts='(${pts})/TB'`, '-frames:v', String(VFR_TIMES.length)],
    ...['-fps_mode', 'passthrough', '-enc_time_base', '1/1000', '-video_track_timescale', '1000', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', at('vfr.mp4')],
  ]);
  rotate(at('box10.mp4'), at('rotated.mp4'), 90);
  ffmpeg(['-f', 'lavfi', '-i', 'sine=frequency=440:duration=0.5', '-c:a', 'aac', at('audio.m4a')]);
  const whole = readFileSync(at('box10.mp4'));
  writeFileSync(at('cut.mp4'), whole.subarray(0, whole.length >> 1)); // index at the end: gone
  const fast = readFileSync(at('box-faststart.mp4'));
  writeFileSync(at('cut-faststart.mp4'), fast.subarray(0, Math.floor(fast.length * 0.7))); // index kept, frames lost
  writeFileSync(at('notes.mp4'), 'These are notes, not a video.\n'.repeat(40));
  writeFileSync(at('notes.txt'), 'These are notes, not a video.\n'.repeat(40));
  writeFileSync(at('empty.mp4'), '');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('probeVideo', () => {
  it('a constant-rate H.264 clip: size, frame times, duration and fps as the decode worker computes them', async () => {
    const p = await probeVideo(at('box10.mp4'));
    expect(p).toMatchObject({ name: 'box10.mp4', width: W, height: H, decodedFrameCount: 20, notice: undefined });
    expect(p.frameTimestampsS).toHaveLength(20);
    p.frameTimestampsS.forEach((t, k) => expect(t).toBeCloseTo(k / 10, 6));
    expect(p.durationS).toBeCloseTo(2, 6);
    expect(p.fps).toBeCloseTo(10, 6);
  });

  it('a variable-frame-rate clip: its own frame times and fps null', async () => {
    const p = await probeVideo(at('vfr.mp4'));
    expect(p.decodedFrameCount).toBe(VFR_TIMES.length);
    p.frameTimestampsS.forEach((t, k) => expect(t).toBeCloseTo(VFR_TIMES[k], 3));
    expect(p.fps).toBeNull();
  });

  it('a clip with a 90° display matrix: width and height swapped', async () => {
    const p = await probeVideo(at('rotated.mp4'));
    expect([p.width, p.height]).toEqual([H, W]);
  });
});

describe('readFramesAt', () => {
  it('gives the frame presented at each sampled time, as RGBA at display size', async () => {
    const path = at('box10.mp4');
    const p = await probeVideo(path);
    // On a frame time, a hair before the next one, between frames, twice the same frame, the end.
    const times = [0, 0.3999, 0.4, 0.45, 0.46, 1.25, 1.9, 2];
    const frames = await readFramesAt(path, p, times, 'rgba');
    expect(frames.map((f) => f.frame)).toEqual([0, 3, 4, 4, 4, 12, 19, 19]);
    expect(frames.map((f) => f.frame)).toEqual(times.map((t) => presentedFrameIndex(t, p.frameTimestampsS)));
    for (const f of frames) {
      expect(f).toMatchObject({ width: W, height: H });
      expect(f.rgba).toHaveLength(W * H * 4);
      expect(f.jpeg).toBeUndefined();
      expect(f.rgba![3]).toBe(255);
      expect(boxLeft(f.rgba!, W, BOX.y + BOX.h / 2)).toBe(STEP * f.frame);
    }
    expect(frames.map((f) => f.timeS)).toEqual(times);
  });

  it('picks the presented frame of a variable-frame-rate clip', async () => {
    const path = at('vfr.mp4');
    const p = await probeVideo(path);
    const times = [0.12, 0.16, 0.99, 1.0, 1.29, 1.5];
    const frames = await readFramesAt(path, p, times, 'rgba');
    expect(frames.map((f) => f.frame)).toEqual([1, 2, 5, 6, 7, 8]);
    for (const f of frames) expect(boxLeft(f.rgba!, W, BOX.y + BOX.h / 2)).toBe(STEP * f.frame);
  });

  it('turns a rotated clip upright: the box runs down the frame', async () => {
    const path = at('rotated.mp4');
    const p = await probeVideo(path);
    const [f] = await readFramesAt(path, p, [0.5], 'rgba');
    expect([f.width, f.height, f.rgba!.length]).toEqual([H, W, H * W * 4]);
    // 90° clockwise: the source's x becomes y, the source's row y becomes column H − 1 − y.
    const column = H - 1 - (BOX.y + BOX.h / 2);
    let top = -1;
    for (let y = 0; y < W && top < 0; y++) if (f.rgba![(y * H + column) * 4] > 128) top = y;
    expect(top).toBe(STEP * 5);
  });

  it('JPEG files instead of RGBA: one complete JPEG per time, far smaller than the RGBA bytes', async () => {
    const path = at('box10.mp4');
    const p = await probeVideo(path);
    const frames = await readFramesAt(path, p, [0.2, 0.25, 1.5], 'jpeg');
    expect(frames.map((f) => f.frame)).toEqual([2, 2, 15]);
    for (const f of frames) {
      expect(f.rgba).toBeUndefined();
      const j = f.jpeg!;
      expect([j[0], j[1], j[j.length - 2], j[j.length - 1]]).toEqual([0xff, 0xd8, 0xff, 0xd9]);
      expect(j.length).toBeLessThan(W * H * 4);
    }
    expect(frames[0].jpeg).toEqual(frames[1].jpeg);
    expect(frames[0].jpeg).not.toEqual(frames[2].jpeg);
  });
});

describe('files that cannot be read: plain messages naming the file', () => {
  const fails = async (name: string, message: RegExp) => {
    const e = await probeVideo(at(name)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(VideoReadError);
    expect((e as Error).message).toMatch(message);
    expect((e as Error).message).toContain(`“${name}”`);
  };

  it('not found, empty, not a video, audio only, cut short before its index', async () => {
    await fails('missing.mp4', /was not found/);
    await fails('empty.mp4', /is empty \(0 bytes\)/);
    await fails('notes.mp4', /format was not recognised/);
    await fails('notes.txt', /format was not recognised/); // ffmpeg would show it as "ANSI art"
    await fails('audio.m4a', /has only audio, no video track/);
    await fails('cut.mp4', /incomplete: its index .* missing/);
  });

  it('cut short after its index: the frames that are there, and a notice', async () => {
    const p = await probeVideo(at('cut-faststart.mp4'));
    expect(p.decodedFrameCount).toBeGreaterThan(0);
    expect(p.decodedFrameCount).toBeLessThan(20);
    expect(p.notice).toMatch(/damaged or cut short: only \d+ of its 20 frames/);
    const last = p.frameTimestampsS.at(-1)!;
    const [f] = await readFramesAt(at('cut-faststart.mp4'), p, [last + 5], 'rgba');
    expect(f.frame).toBe(p.decodedFrameCount - 1);
  });

  it('ffprobe or ffmpeg missing: says how to install it', async () => {
    const saved = process.env.FFPROBE_PATH;
    process.env.FFPROBE_PATH = join(dir, 'no-ffprobe');
    try {
      const e = await probeVideo(at('box10.mp4')).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(VideoReadError);
      expect((e as Error).message).toMatch(/ffprobe was not found .* `apt install ffmpeg`/);
    } finally {
      if (saved === undefined) delete process.env.FFPROBE_PATH;
      else process.env.FFPROBE_PATH = saved;
    }
  });
});
