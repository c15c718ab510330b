// A result file imported onto the open video: refused when the frame size differs, imported with a
// warning when the name or frame count differs. The annotated-video export of an imported run in both
// containers the export worker writes: MP4 (H.264) and, where H.264 cannot be encoded, WebM (VP9),
// each decoded with ffprobe/ffmpeg (codec, container, frame count, size, a marker pixel).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { buildResult, exportResultJson } from '../src/molmo2/export/result.ts';
import { trackStyle } from '../src/overlay/overlay-model.ts';
import { CLIP, h264Clip, testsrc720pClip, vp9Clip } from './fixtures/clips.ts';

// The white box's centre in frame f of the box clip is (10 f + 10, 120). The range 0.5–2.9 s is sent as
// a clip sampled at clip times 0, 0.5, …, 2.0, 2.4 s → frames 5, 10, 15, 20, 25, 29; object 1 follows the box.
const FRAMES = [5, 10, 15, 20, 25, 29];
const boxX = (f: number) => CLIP.step * f + CLIP.boxW / 2;
const boxY = CLIP.boxY + CLIP.boxH / 2;
const norm = (px: number, size: number) => String(Math.round((px * 1000) / size)).padStart(3, '0');

function resultFile(): string {
  const coords = FRAMES.map((f) => `${((f - 5) / CLIP.fps).toFixed(1)} 1 ${norm(boxX(f), CLIP.width)} ${norm(boxY, CLIP.height)}`).join(';');
  const result = buildResult({
    app: { name: 'molmo2-web', version: '0.1.0' },
    model: { id: 'allenai/Molmo2-4B', dtype: 'q4f16' },
    sampling: { mode: 'range', fps: 2, maxFrames: 384, maxNewTokens: 2048 },
    video: {
      name: 'box_h264.mp4',
      width: CLIP.width,
      height: CLIP.height,
      durationS: CLIP.frames / CLIP.fps,
      fps: CLIP.fps,
      decodedFrameCount: CLIP.frames,
      sampledTimesS: FRAMES.map((f) => f / CLIP.fps),
    },
    query: { text: 'Track the box.', task: 'track', mode: 'video', clipStartS: FRAMES[0] / CLIP.fps },
    rawText: `<tracks coords="${coords}">box</tracks>`,
    createdAt: '2026-01-01T00:00:00.000Z',
  });
  expect(result.points.map((p) => p.frame)).toEqual(FRAMES);
  const path = join(mkdtempSync(join(tmpdir(), 'molmo2-result-')), 'box.result.json');
  writeFileSync(path, exportResultJson(result, 'complete'));
  return path;
}

/** The box clip cut to its first `frames` frames, under the same file name (a different video of that name). */
function shortenedClip(frames: number): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'molmo2-short-')), 'copy');
  mkdirSync(dir);
  const path = join(dir, 'box_h264.mp4');
  const res = spawnSync(process.env.FFMPEG_PATH ?? '/usr/bin/ffmpeg', ['-v', 'error', '-y', '-i', h264Clip(), '-frames:v', String(frames), '-c', 'copy', path], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`ffmpeg failed: ${res.stderr}`);
  return path;
}

async function openVideo(page: Page, path: string) {
  await page.goto('/');
  await page.getByTestId('video-input').setInputFiles(path);
  await expect(page.getByTestId('frame-canvas')).toHaveAttribute('data-shown-frame', '0');
}

async function importResult(page: Page, path: string) {
  await page.getByTestId('import-input').setInputFiles(path);
}

test.describe('importing a result onto another video', () => {
  test('the same video imports without a note', async ({ page }) => {
    await openVideo(page, h264Clip());
    await importResult(page, resultFile());
    await expect(page.getByTestId('run')).toHaveCount(1);
    await expect(page.getByTestId('announcement')).toContainText('Imported 6 points from box.result.json');
    await expect(page.getByTestId('results-panel').getByRole('alert')).toHaveCount(0);
  });

  test('a video of another frame size is refused with both sizes named, and nothing is imported', async ({ page }) => {
    await openVideo(page, testsrc720pClip());
    await importResult(page, resultFile());
    await expect(page.getByTestId('results-panel').getByRole('alert')).toHaveText(
      '“box.result.json” was made for a 320×240 video; the open video is 1280×720.',
    );
    await expect(page.getByTestId('run')).toHaveCount(0);
  });

  test('a video of another name imports with a warning naming both files', async ({ page }) => {
    await openVideo(page, vp9Clip());
    await importResult(page, resultFile());
    await expect(page.getByTestId('run')).toHaveCount(1);
    await expect(page.getByTestId('results-panel').getByRole('alert')).toHaveText(
      '“box.result.json” was made for “box_h264.mp4” (30 frames); the open video is “box_vp9.webm” (30 frames).',
    );
  });

  test('a video of the same name with another frame count imports with a warning naming both counts', async ({ page }) => {
    await openVideo(page, shortenedClip(20));
    await importResult(page, resultFile());
    await expect(page.getByTestId('run')).toHaveCount(1);
    await expect(page.getByTestId('results-panel').getByRole('alert')).toHaveText(
      '“box.result.json” was made for “box_h264.mp4” (30 frames); the open video is “box_h264.mp4” (20 frames).',
    );
  });
});

// Prepended to the export worker's module: the browser reports H.264 encoding as unsupported, as
// browsers without an H.264 encoder do, so the worker falls back to WebM.
const NO_H264_ENCODER = `{
  const isConfigSupported = VideoEncoder.isConfigSupported.bind(VideoEncoder);
  VideoEncoder.isConfigSupported = async (config) => (config.codec.startsWith('avc') ? { supported: false, config } : isConfigSupported(config));
}
`;

interface Probe {
  format: string;
  codec: string;
  width: number;
  height: number;
  frames: number;
}

function probe(path: string): Probe {
  const out = execFileSync(
    'ffprobe',
    ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'format=format_name:stream=codec_name,width,height,nb_read_frames', '-of', 'json', path],
    { encoding: 'utf8' },
  );
  const j = JSON.parse(out);
  const s = j.streams[0];
  return { format: j.format.format_name, codec: s.codec_name, width: s.width, height: s.height, frames: Number(s.nb_read_frames) };
}

/** RGB of pixel (x, y) of decoded output frame n. */
function pixel(path: string, n: number, x: number, y: number): number[] {
  const raw = execFileSync('ffmpeg', ['-v', 'error', '-i', path, '-vf', `select=eq(n\\,${n})`, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { maxBuffer: 1 << 24 });
  const i = (y * CLIP.width + x) * 3;
  return [...raw.subarray(i, i + 3)];
}

const near = (a: number[], b: number[], tol: number) => b.every((v, i) => Math.abs(a[i] - v) <= tol);
const hex = (c: string) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));

async function exportAnnotated(page: Page): Promise<{ path: string; name: string }> {
  await openVideo(page, h264Clip());
  await importResult(page, resultFile());
  // The imported run is the selected one; the export bar acts on it.
  const bar = page.getByTestId('export-bar');
  await expect(bar).toContainText('Track the box.');
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 180_000 }), bar.getByRole('button', { name: 'Annotated video' }).click()]);
  const path = join(mkdtempSync(join(tmpdir(), 'molmo2-annotated-')), download.suggestedFilename());
  await download.saveAs(path);
  return { path, name: download.suggestedFilename() };
}

/** The range's 25 frames at the clip's size, with object 1's marker burned in on the box (output frame 15 = video frame 20). */
function expectAnnotatedRange(path: string) {
  const p = probe(path);
  expect({ width: p.width, height: p.height, frames: p.frames }).toEqual({ width: CLIP.width, height: CLIP.height, frames: 25 });
  const marker = pixel(path, 15, boxX(20), boxY);
  expect(near(marker, hex(trackStyle(1).color), 40), `marker ${marker} ≈ ${trackStyle(1).color}`).toBe(true);
  expect(near(pixel(path, 15, boxX(20) + 60, boxY + 60), [0, 0, 0], 30)).toBe(true);
  return p;
}

test.describe('annotated video export', () => {
  test.describe.configure({ timeout: 300_000 });

  test('MP4 with H.264 where the browser encodes H.264', async ({ page }) => {
    const { path, name } = await exportAnnotated(page);
    expect(name).toMatch(/\.annotated\.mp4$/);
    const p = expectAnnotatedRange(path);
    expect(p.codec).toBe('h264');
    expect(p.format).toContain('mp4');
  });

  test.describe('without an H.264 encoder', () => {
    // The service worker is kept out so that the page's request for the worker module is the one routed.
    test.use({ serviceWorkers: 'block' });

    test('WebM with VP9', async ({ page }) => {
      let patched = 0;
      await page.route(/\/workers\/annotate\.worker\.ts/, async (route) => {
        const response = await route.fetch();
        patched++;
        await route.fulfill({ response, body: NO_H264_ENCODER + (await response.text()) });
      });
      const { path, name } = await exportAnnotated(page);
      expect(patched).toBe(1);
      expect(name).toMatch(/\.annotated\.webm$/);
      const p = expectAnnotatedRange(path);
      expect(p.codec).toBe('vp9');
      expect(p.format).toContain('webm');
    });
  });
});
