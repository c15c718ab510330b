// The batch over real clips (made with ffmpeg) and a real HTTP server on 127.0.0.1 (the OpenAI-compatible
// test server, whose answer points at the frames it received): files written, bad videos reported and
// skipped, a stopped batch rerun finishing only the rest, and the command line itself.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importResultJson, type ResultJson } from '../../src/molmo2/export/index.ts';
import { rangeSampleTimes, sampleTimes } from '../../src/molmo2/video.ts';
import { startOpenAiTestServer } from '../lib/openai-test-server.ts';
import { parseRange, parseTime, UsageError } from './arguments.ts';
import { openOpenAiBackend } from './openai-backend.ts';
import { listVideos, runBatch, type BatchOptions } from './run-batch.ts';

const FFMPEG = process.env.FFMPEG_PATH ?? '/usr/bin/ffmpeg';
const ROOT = new URL('../..', import.meta.url).pathname;
const MODEL = 'allenai/Molmo2-8B';
const APP = { name: 'molmo2-web', version: 'test' };

let dir: string;
let videos: string;
let server: Awaited<ReturnType<typeof startOpenAiTestServer>>;

/** A clip of `seconds` at 10 fps: a white square moving right on black. */
function clip(path: string, seconds: number): void {
  execFileSync(FFMPEG, ['-v', 'error', '-f', 'lavfi', '-i', `color=black:s=96x64:r=10:d=${seconds}`, '-vf', "drawbox=x='t*20':y=20:w=16:h=16:color=white:t=fill", '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-y', path]);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'batch-'));
  videos = join(dir, 'videos');
  mkdirSync(join(videos, 'day2'), { recursive: true });
  clip(join(videos, 'a.mp4'), 2);
  clip(join(videos, 'day2', 'b.mp4'), 3);
  clip(join(videos, 'day2', 'c.mov'), 1);
  writeFileSync(join(videos, 'broken.mp4'), 'this is not a video');
  writeFileSync(join(videos, 'notes.txt'), 'not listed: not a video extension');
  server = await startOpenAiTestServer({ models: [MODEL] });
}, 60_000);

afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function options(out: string, o: Partial<BatchOptions> = {}): Promise<BatchOptions> {
  const backend = await openOpenAiBackend({ server: server.url, model: MODEL, concurrency: 2, timeoutMs: 10_000, retries: 1, sleep: async () => {} });
  return { inputs: [videos], question: 'Point to the white square.', maxFrames: 64, maxNewTokens: 256, out, exports: ['csv', 'mot'], backend, app: APP, ...o };
}

const chatRequests = () => server.requests.filter((r) => r.method === 'POST');
const readResult = (file: string): ResultJson => {
  const read = importResultJson(readFileSync(file, 'utf8'));
  if (!read.ok) throw new Error(read.errors.join('; '));
  return read.result;
};

describe('runBatch', () => {
  it('lists videos in folders recursively, in a stable order, with flat unique names', async () => {
    const { videos: list, missing } = await listVideos([videos, join(videos, 'a.mp4'), join(dir, 'nowhere')]);
    expect(list.map((v) => v.name)).toEqual(['a.mp4', 'broken.mp4', 'day2__b.mp4', 'day2__c.mov', 'a.mp4-2']);
    expect(missing).toEqual([join(dir, 'nowhere')]);
  });

  it('answers every readable video, writes its result and exports, and reports the bad one', async () => {
    const out = join(dir, 'out-all');
    const before = chatRequests().length;
    const s = await runBatch(await options(out));
    expect(s.total).toBe(4);
    expect(s.done).toHaveLength(3);
    expect(s.failed).toHaveLength(1);
    expect(s.failed[0].video).toContain('broken.mp4');
    expect(s.failed[0].message).toMatch(/broken\.mp4/);
    expect(chatRequests().length - before).toBe(3);

    const b = readResult(join(out, 'day2__b.mp4.result.json'));
    expect(b.status).toBe('complete');
    expect(b.video.name).toBe('b.mp4');
    expect(b.model).toEqual({ id: MODEL, dtype: expect.any(String) });
    expect(b.video.width).toBe(96);
    expect(b.video.decodedFrameCount).toBe(30);
    // The app's sampler: 2 fps plus the last instant of the clip.
    expect(b.video.sampledTimesS).toEqual(sampleTimes(b.video.durationS, { maxFps: 2, maxFrames: 64 }));
    expect(b.video.sampledFrames).toEqual(b.video.sampledTimesS.map((t) => Math.min(29, Math.floor(t * 10 + 1e-6))));
    // The test server points once per frame it received, at that frame's timestamp: every sampled time has its point.
    expect(b.points.length).toBe(b.video.sampledTimesS.length);
    expect(b.points.map((p) => p.timeS)).toEqual(b.video.sampledTimesS);
    for (const f of ['day2__b.mp4.csv', 'day2__b.mp4.mot.txt', 'a.mp4.result.json', 'day2__c.mov.result.json']) expect(existsSync(join(out, f)), f).toBe(true);
    expect(existsSync(join(out, 'broken.mp4.result.json'))).toBe(false);

    const report = JSON.parse(readFileSync(join(out, 'batch-report.json'), 'utf8'));
    expect(report.failed).toHaveLength(1);
    expect(report.done).toHaveLength(3);
    const all = readFileSync(join(out, 'all.csv'), 'utf8').trimEnd().split('\r\n');
    const perVideo = ['a.mp4', 'day2__b.mp4', 'day2__c.mov'].map((n) => readResult(join(out, `${n}.result.json`)).points.length);
    expect(all.length).toBe(1 + perVideo.reduce((a, n) => a + n, 0));
  });

  it('samples only the range asked for, as a clip starting at the range start', async () => {
    const out = join(dir, 'out-range');
    const s = await runBatch(await options(out, { inputs: [join(videos, 'day2', 'b.mp4')], range: [0.5, 2.2], exports: [] }));
    expect(s.done).toHaveLength(1);
    const r = readResult(join(out, 'b.mp4.result.json'));
    expect(r.query.clipStartS).toBe(0.5);
    expect(r.video.sampledTimesS).toEqual(rangeSampleTimes(0.5, 2.2, { maxFps: 2, maxFrames: 64 }));
    const body = JSON.stringify(chatRequests().at(-1)!.body);
    expect(body).toContain('Point to the white square.');
  });

  it('a stopped batch, run again, answers only the videos it had not finished', async () => {
    const out = join(dir, 'out-resume');
    const stop = new AbortController();
    const first = await runBatch({
      ...(await options(out, { exports: [] })),
      backend: await openOpenAiBackend({ server: server.url, model: MODEL, concurrency: 1, retries: 0, sleep: async () => {} }),
      signal: stop.signal,
      onProgress: (p) => p.done === 1 && stop.abort(new Error('stopped by the test')),
    });
    expect(first.done).toHaveLength(1);
    expect(first.interrupted).toBe(true);

    const before = chatRequests().length;
    const second = await runBatch(await options(out, { exports: [] }));
    expect(second.skipped).toEqual(first.done);
    expect(second.done).toHaveLength(2);
    expect(second.done).not.toContain(first.done[0]);
    expect(chatRequests().length - before).toBe(2);

    // An export asked for only now is written from the finished results, without asking again.
    const withCsv = await runBatch(await options(out, { exports: ['csv'] }));
    expect(withCsv.skipped).toHaveLength(3);
    expect(chatRequests().length - before).toBe(2);
    for (const n of ['a.mp4', 'day2__b.mp4', 'day2__c.mov']) expect(existsSync(join(out, `${n}.csv`)), n).toBe(true);

    // A different question is a different batch: nothing is skipped.
    const third = await runBatch(await options(out, { exports: [], question: 'Track the white square.' }));
    expect(third.skipped).toHaveLength(0);
    expect(third.done).toHaveLength(3);
  });
});

describe('command line', () => {
  it('reads times and ranges, and refuses bad ones with what was expected', () => {
    expect(parseTime('1:05.5')).toBe(65.5);
    expect(parseRange('0:05-20')).toEqual([5, 20]);
    expect(() => parseRange('20-5')).toThrow(/end must be after the start/);
    expect(() => parseRange('soon')).toThrow(UsageError);
  });

  /** Runs the command without blocking this process (the test server answers from it). */
  const batch = (args: string[]) =>
    new Promise<{ status: number | null; stderr: string }>((done) => {
      execFile(join(ROOT, 'node_modules', '.bin', 'tsx'), [join(ROOT, 'tools', 'batch.ts'), ...args], { encoding: 'utf8', timeout: 60_000 }, (e, _stdout, stderr) =>
        done({ status: e ? ((e as { code?: number }).code ?? null) : 0, stderr }),
      );
    });

  it('npm run batch answers a clip on a server and exits 0; a bad option exits 2 with the usage', async () => {
    const out = join(dir, 'out-cli');
    const ok = await batch([join(videos, 'a.mp4'), '-q', 'Point to the white square.', '--server', server.url, '--model', MODEL, '--out', out, '--export', 'all']);
    expect(ok.stderr).toContain('1 answered');
    expect(ok.status).toBe(0);
    for (const f of ['a.mp4.result.json', 'a.mp4.csv', 'a.mp4.cvat.xml', 'a.mp4.coco.json', 'a.mp4.mot.txt', 'all.csv', 'batch-report.json']) expect(existsSync(join(out, f)), f).toBe(true);

    const bad = await batch([videos, '-q', 'x', '--max-frames', '0']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--max-frames takes a whole number from 1 to 384/);
    expect(bad.stderr).toContain('--question');
  }, 120_000);
});
