import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RemoteCheckpoint } from '../src/molmo2/hub/remote-checkpoint.ts';
import { blockOutputSizes, InlineEncoder, type BlockEncoding, type BlockRequest } from '../src/molmo2/onnx/encode.ts';
import { writeSafetensors } from '../src/molmo2/safetensors.ts';
import { names } from '../src/molmo2/tensors.ts';
import { readCheckpointFolder, SafetensorsCheckpoint } from './lib/checkpoint.ts';
import { convertCheckpoint, ConvertError, describePlan, type ConvertOptions, type ConvertResult } from './lib/converter.ts';
import { directUrlFetch } from './lib/direct-urls.ts';
import { WorkerEncoder } from './lib/encoder-pool.ts';
import { cacheFolder, downloadCheckpoint, HubError, resolveUrl, type Progress } from './lib/hub.ts';
import { HubServer, parseRange } from './lib/hub-server.ts';
import { makeTinyCheckpoint, type TinyCheckpoint } from './lib/tiny-checkpoint.ts';

const REPO = 'allenai/Molmo2-Tiny';
const GATED = 'allenai/Molmo2-Gated';
/** Every file served (nothing hidden), weights through a redirect to /cdn/ as the Hub does. */
const STREAM = 'allenai/Molmo2-Stream';
const MATRICES = 'test/matrices';
const COMMIT = '6b9348b1e7dd95f1e5fb29f77075619215f1cbaa';
const TOKEN = 'hf_test_token_123';

let root: string;
let ck: TinyCheckpoint;
let server: HubServer;
let cacheDir: string;
let shard1: string;
let shard2: string;
let matrices: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'hub-'));
  ck = await makeTinyCheckpoint({ outDir: join(root, 'source'), seed: 11 });
  [shard1, shard2] = ck.files.filter((f) => f.endsWith('.safetensors')).sort();
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let runCount = 0;
async function startServer(extra: Partial<Parameters<typeof HubServer.prototype.addFault>[0]>[] = []) {
  server = new HubServer({
    [REPO]: { dir: ck.outDir, commit: COMMIT, hidden: ['video_preprocessor_config.json'], redirectWeights: true },
    [GATED]: { dir: ck.outDir, token: TOKEN, revision: 'v1' },
    [STREAM]: { dir: ck.outDir, commit: COMMIT, redirectWeights: true },
    ...(matrices ? { [MATRICES]: { dir: matrices, redirectWeights: true } } : {}),
  });
  for (const f of extra) server.addFault(f as Parameters<typeof server.addFault>[0]);
  await server.start();
  cacheDir = join(root, `cache-${runCount++}`);
}
afterEach(async () => {
  await server?.stop();
});

const same = async (a: string, b: string) => Buffer.compare(await readFile(a), await readFile(b)) === 0;
const quiet = { backoffMs: 1, log: () => {} };

describe('downloadCheckpoint', () => {
  it('fetches every file through the resolve layout, following redirects, skipping absent optional files', async () => {
    await startServer();
    const progress: Progress[] = [];
    const dl = await downloadCheckpoint({ repo: REPO, endpoint: server.url, cacheDir, onProgress: (p) => progress.push(p), ...quiet });
    expect(dl.dir).toBe(cacheFolder(cacheDir, REPO, 'main'));
    expect(dl.commit).toBe(COMMIT);
    const expected = ck.files.filter((f) => f !== 'video_preprocessor_config.json').sort();
    expect([...dl.files].sort()).toEqual(expected);
    expect((await readdir(dl.dir)).sort()).toEqual(['.commit', ...expected]);
    for (const f of expected) expect(await same(join(dl.dir, f), join(ck.outDir, f)), f).toBe(true);
    expect(server.requests.some((r) => r.path === `/${REPO}/resolve/main/${shard1}` && r.status === 302)).toBe(true);
    expect(server.requests.some((r) => r.path === `/${REPO}/resolve/main/video_preprocessor_config.json` && r.status === 404)).toBe(true);
    const last = progress.filter((p) => p.file === shard1).at(-1)!;
    expect(last.received).toBe((await stat(join(ck.outDir, shard1))).size);
    expect(last.total).toBe(last.received);

    // A second run finds every file in the cache; only the absent optional file is asked for again.
    const before = server.requests.length;
    const again = await downloadCheckpoint({ repo: REPO, endpoint: server.url, cacheDir, ...quiet });
    expect(again.commit).toBe(COMMIT);
    expect(server.requests.slice(before).map((r) => `${r.status} ${r.path}`)).toEqual([`404 /${REPO}/resolve/main/video_preprocessor_config.json`]);
  });

  it('sends HF_TOKEN as a Bearer token and explains a refusal without one', async () => {
    await startServer();
    const saved = process.env.HF_TOKEN;
    try {
      delete process.env.HF_TOKEN;
      await expect(downloadCheckpoint({ repo: GATED, revision: 'v1', endpoint: server.url, cacheDir, configOnly: true, ...quiet })).rejects.toThrow(/HTTP 401.*set HF_TOKEN/);
      process.env.HF_TOKEN = TOKEN;
      const dl = await downloadCheckpoint({ repo: GATED, revision: 'v1', endpoint: server.url, cacheDir, configOnly: true, ...quiet });
      expect(dl.files).toContain('model.safetensors.index.json');
      expect(dl.files.some((f) => f.endsWith('.safetensors'))).toBe(false);
      const authed = server.requests.filter((r) => r.status === 200);
      expect(authed.length).toBeGreaterThan(0);
      for (const r of authed) expect(r.authorization).toBe(`Bearer ${TOKEN}`);
    } finally {
      if (saved === undefined) delete process.env.HF_TOKEN;
      else process.env.HF_TOKEN = saved;
    }
  });

  it('resumes a shard with a Range request after the connection drops mid-file', async () => {
    const cut = 3_000_000;
    await startServer([{ file: shard1, dropAfter: cut, times: 1 }]);
    const logs: string[] = [];
    const dl = await downloadCheckpoint({ repo: REPO, endpoint: server.url, cacheDir, backoffMs: 1, log: (m) => logs.push(m) });
    expect(await same(join(dl.dir, shard1), join(ck.outDir, shard1))).toBe(true);
    const shardRequests = server.requests.filter((r) => r.path.endsWith(shard1) && r.path.startsWith('/cdn/'));
    expect(shardRequests.length).toBe(2);
    expect(shardRequests[0].range).toBeUndefined();
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(shardRequests[1].range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(cut);
    expect(shardRequests[1].status).toBe(206);
    expect(shardRequests[1].bodyBytes).toBe((await stat(join(ck.outDir, shard1))).size - resumedAt);
    expect(logs.join('\n')).toMatch(/resum/);
    expect(existsSync(join(dl.dir, `${shard1}.part`))).toBe(false);
  });

  it('aborts a transfer that stalls and resumes it', async () => {
    await startServer([{ file: shard1, dropAfter: 500_000, stall: true, times: 1 }]);
    const logs: string[] = [];
    // The stalled response never sends again; a generous stall limit keeps a busy machine's slow (but flowing) transfers from counting as stalls.
    const dl = await downloadCheckpoint({ repo: REPO, endpoint: server.url, cacheDir, backoffMs: 1, stallMs: 2000, log: (m) => logs.push(m) });
    expect(await same(join(dl.dir, shard1), join(ck.outDir, shard1))).toBe(true);
    expect(logs.join('\n')).toMatch(/no data for 2 s/);
    const shardRequests = server.requests.filter((r) => r.path.startsWith('/cdn/') && r.path.endsWith(shard1));
    expect(shardRequests.map((r) => r.range)).toEqual([undefined, 'bytes=500000-']);
  }, 30_000);

  it('continues a .part file left by an earlier run', async () => {
    await startServer([{ file: shard2, dropAfter: 1_000_000, times: 1 }]);
    await expect(downloadCheckpoint({ repo: REPO, endpoint: server.url, cacheDir, retries: 0, ...quiet })).rejects.toThrow(/run the command again to resume/);
    const dir = cacheFolder(cacheDir, REPO, 'main');
    expect(existsSync(join(dir, shard2))).toBe(false);
    const partSize = (await stat(join(dir, `${shard2}.part`))).size;
    expect(partSize).toBeGreaterThan(0);
    await downloadCheckpoint({ repo: REPO, endpoint: server.url, cacheDir, ...quiet });
    expect(await same(join(dir, shard2), join(ck.outDir, shard2))).toBe(true);
    expect(server.requests.filter((r) => r.path.endsWith(shard2)).at(-1)!.range).toBe(`bytes=${partSize}-`);
  });

  it('detects a truncated file, fetches it again, and reports one that stays truncated', async () => {
    const size = (await stat(join(ck.outDir, shard2))).size;
    await startServer([{ file: shard2, truncateTo: size - 4096, times: 1 }]);
    const logs: string[] = [];
    const dl = await downloadCheckpoint({ repo: REPO, endpoint: server.url, cacheDir, backoffMs: 1, log: (m) => logs.push(m) });
    expect(await same(join(dl.dir, shard2), join(ck.outDir, shard2))).toBe(true);
    expect(logs.join('\n')).toMatch(new RegExp(`${shard2}: file has ${size - 4096} bytes but its header describes ${size}; downloading it again`));
    await server.stop();

    await startServer([{ file: shard2, truncateTo: size - 4096, times: 5 }]);
    await expect(downloadCheckpoint({ repo: REPO, endpoint: server.url, cacheDir, ...quiet })).rejects.toThrow(new RegExp(`${shard2} is still inconsistent`));
    const dir = cacheFolder(cacheDir, REPO, 'main');
    expect(existsSync(join(dir, shard2))).toBe(false);
  });

  it('gives up with a clear message when the server keeps cutting the transfer short', async () => {
    await startServer([{ file: shard1, dropAfter: 0, times: 100 }]);
    await expect(downloadCheckpoint({ repo: REPO, endpoint: server.url, cacheDir, retries: 2, ...quiet })).rejects.toThrow(
      new RegExp(`${shard1}: download failed 3 times in a row without progress`),
    );
  });

  it('fails at once with a clear message when the endpoint cannot be reached', async () => {
    await startServer();
    const url = server.url;
    await server.stop();
    const log: string[] = [];
    const failure = downloadCheckpoint({ repo: REPO, endpoint: url, cacheDir, backoffMs: 1, log: (l) => log.push(l) });
    await expect(failure).rejects.toThrow(HubError);
    await expect(failure).rejects.toThrow(/cannot reach http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\); check the network connection or set HF_ENDPOINT/);
    // At once: a refused connection is not retried.
    expect(log.filter((l) => /retrying/.test(l))).toEqual([]);
  });

  it('rejects what is not a repository id', async () => {
    await expect(downloadCheckpoint({ repo: '../etc', cacheDir: root })).rejects.toThrow(HubError);
    expect(resolveUrl('https://hf.co', 'a/b', 'refs/pr/1', 'x y.json')).toBe('https://hf.co/a/b/resolve/refs%2Fpr%2F1/x%20y.json');
  });
});

describe('convert from the Hub', () => {
  it('dry-runs a repository by fetching only its config files and index', async () => {
    await startServer();
    const { plan } = await convertCheckpoint({ source: REPO, dryRun: true, cacheDir, hub: { endpoint: server.url, ...quiet }, modelsDir: join(root, 'models') });
    expect(plan.source).toMatchObject({ repo: REPO, revision: COMMIT, local: false });
    expect(plan.tensorSource).toBe('index names with shapes from config.json');
    expect(plan.randomWeights).toBe(true);
    expect(plan.outDir).toBe(join(root, 'models', 'Molmo2-Tiny'));
    expect(plan.weights).toEqual({ mode: 'streamed', from: server.url, repositoryBytes: ck.totalSize });
    expect(plan.warnings.join('\n')).toMatch(/a dry run reads no weight file/);
    expect(describePlan(plan).join('\n')).toMatch(/weights: streamed from .* with Range requests while converting, not downloaded, [\d.]+ MB in the repository \(--keep-download downloads them into the cache first\)/);
    expect(server.requests.some((r) => r.path.endsWith('.safetensors'))).toBe(false);
    expect(existsSync(join(root, 'models'))).toBe(false);
  });

  it('stops before converting when a downloaded shard is inconsistent with its header (--keep-download)', async () => {
    await startServer();
    const dir = cacheFolder(cacheDir, REPO, 'main');
    await downloadCheckpoint({ repo: REPO, endpoint: server.url, cacheDir, ...quiet });
    // Corrupt the cached copy after download (e.g. a disk problem): the converter must notice.
    const bytes = await readFile(join(dir, shard1));
    await writeFile(join(dir, shard1), bytes.subarray(0, bytes.byteLength - 100));
    await expect(convertCheckpoint({ source: REPO, keepDownload: true, cacheDir, hub: { endpoint: server.url, ...quiet }, modelsDir: join(root, 'models') })).rejects.toThrow(
      new RegExp(`${shard1} is truncated`),
    );
  });
});

describe('the test Hub server', () => {
  it('answers closed, open and suffix ranges, 416 for unsatisfiable ones, CORS headers and preflights', async () => {
    expect(parseRange('bytes=2-5', 10)).toEqual({ start: 2, end: 5 });
    expect(parseRange('bytes=2-', 10)).toEqual({ start: 2, end: 9 });
    expect(parseRange('bytes=8-20', 10)).toEqual({ start: 8, end: 9 });
    expect(parseRange('bytes=-3', 10)).toEqual({ start: 7, end: 9 });
    expect(parseRange('bytes=10-12', 10)).toBe('unsatisfiable');
    expect(parseRange('bytes=5-2', 10)).toBe('malformed');
    await startServer();
    const file = await readFile(join(ck.outDir, 'config.json'));
    const url = resolveUrl(server.url, STREAM, 'main', 'config.json');
    const get = (range?: string) => fetch(url, { headers: range ? { range } : {} });
    const closed = await get('bytes=10-19');
    expect(closed.status).toBe(206);
    expect(closed.headers.get('content-range')).toBe(`bytes 10-19/${file.byteLength}`);
    expect(Buffer.from(await closed.arrayBuffer()).equals(file.subarray(10, 20))).toBe(true);
    expect(closed.headers.get('access-control-allow-origin')).toBe('*');
    expect(closed.headers.get('access-control-expose-headers')).toMatch(/Content-Range.*Content-Length.*Accept-Ranges.*X-Repo-Commit.*ETag/);
    const open = await get(`bytes=${file.byteLength - 5}-`);
    expect(Buffer.from(await open.arrayBuffer()).equals(file.subarray(-5))).toBe(true);
    const beyond = await get(`bytes=${file.byteLength}-${file.byteLength + 9}`);
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get('content-range')).toBe(`bytes */${file.byteLength}`);
    // The commit id serves as a revision, as on the Hub.
    expect((await fetch(resolveUrl(server.url, STREAM, COMMIT, 'config.json'))).status).toBe(200);
    const preflight = await fetch(url, { method: 'OPTIONS', headers: { origin: 'http://127.0.0.1:1', 'access-control-request-headers': 'range,authorization' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/Range.*Authorization/);
    expect(preflight.headers.get('access-control-allow-methods')).toMatch(/GET.*HEAD/);
    expect(server.preflights.map((r) => `${r.method} ${r.status}`)).toEqual(['OPTIONS 204']);
    expect(server.requests.some((r) => r.method === 'OPTIONS')).toBe(false);
    const head = await fetch(url, { method: 'HEAD' });
    expect(head.headers.get('content-length')).toBe(String(file.byteLength));
  });

  it('drops, stalls and truncates range responses, counting the bytes of that response', async () => {
    const file = await readFile(join(ck.outDir, shard1));
    await startServer([
      { file: shard1, dropAfter: 1000, covering: 50_000, times: 1 },
      { file: shard2, truncateTo: 4096, times: 1 },
    ]);
    const url = (f: string) => resolveUrl(server.url, GATED, 'v1', f);
    const auth = { authorization: `Bearer ${TOKEN}` };
    // Not covering byte 50000: served whole.
    expect((await (await fetch(url(shard1), { headers: { ...auth, range: 'bytes=0-9999' } })).arrayBuffer()).byteLength).toBe(10_000);
    const cut = await fetch(url(shard1), { headers: { ...auth, range: 'bytes=40000-59999' } });
    expect(cut.status).toBe(206);
    await expect(cut.arrayBuffer()).rejects.toThrow();
    expect(server.requests.at(-1)!.bodyBytes).toBe(1000);
    const again = await fetch(url(shard1), { headers: { ...auth, range: 'bytes=40000-59999' } });
    expect(Buffer.from(await again.arrayBuffer()).equals(file.subarray(40_000, 60_000))).toBe(true);
    const short = await fetch(url(shard2), { headers: { ...auth, range: 'bytes=4000-9999' } });
    expect(short.headers.get('content-range')).toBe('bytes 4000-4095/4096');
  });
});

describe('streaming conversion', () => {
  const options = (source: string, out: string, extra: Partial<ConvertOptions> = {}): ConvertOptions => ({
    source,
    out: join(root, 'converted', out),
    dtypes: ['q4f16'],
    threads: 2,
    name: 'Molmo2-Tiny',
    sourceLabel: { repo: 'allenai/Molmo2-Tiny', revision: COMMIT },
    ...extra,
    hub: { endpoint: server?.url, ...quiet, ...extra.hub },
  });
  let fromFolder: ConvertResult | undefined;
  /** The conversion of the checkpoint folder itself, which every Hub conversion must reproduce byte for byte. */
  const folderConversion = async () => (fromFolder ??= await convertCheckpoint(options(ck.outDir, 'folder')));
  /** The same manifest (but for its date) listing the same files, whose bytes are the same too. */
  const sameFiles = async (a: ConvertResult, b: ConvertResult) => {
    expect({ ...a.manifest, createdAt: '' }).toEqual({ ...b.manifest, createdAt: '' });
    for (const f of a.manifest!.files.map((x) => x.path)) {
      expect(await same(join(a.plan.outDir, f), join(b.plan.outDir, f)), f).toBe(true);
    }
  };

  it('streams a Hub repository with Range requests: the same files as converting its folder, only config files in the cache', async () => {
    const local = await folderConversion();
    await startServer();
    const progress: Progress[] = [];
    const logs: string[] = [];
    const streamed = await convertCheckpoint(options(STREAM, 'streamed', { cacheDir, log: (m) => logs.push(m), hub: { onProgress: (p) => progress.push(p) } }));
    expect(streamed.plan.weights).toMatchObject({ mode: 'streamed', from: server.url });
    expect(streamed.plan.tensorSource).toBe('safetensors headers');
    expect(streamed.plan.source).toMatchObject({ repo: STREAM, revision: COMMIT, local: false });
    expect(describePlan(streamed.plan).join('\n')).toMatch(/weights: streamed from http:\/\/127\.0\.0\.1:\d+ with Range requests while converting, not downloaded, [\d.]+ MB to read/);
    await sameFiles(streamed, local);

    // Only the config files were stored; no shard, partial file or tile-cache folder is left.
    const cached = (await readdir(cacheFolder(cacheDir, STREAM, 'main'))).sort();
    expect(cached).toEqual(['.commit', ...ck.files.filter((f) => !f.endsWith('.safetensors'))].sort());

    // Every weight byte came through closed Range requests, pinned to the commit the revision resolved to,
    // and straight from the download URL: the resolve URL was asked only once per shard and thread (HEAD).
    const shardRequests = server.requests.filter((r) => r.path.endsWith('.safetensors'));
    const resolved = shardRequests.filter((r) => r.path.includes('/resolve/'));
    expect(resolved.every((r) => r.method === 'HEAD' && r.path.includes(`/resolve/${COMMIT}/`))).toBe(true);
    expect(resolved.length).toBeLessThanOrEqual(2 * (1 + 2));
    const gets = shardRequests.filter((r) => r.method === undefined);
    expect(gets.every((r) => r.status === 206 && /^bytes=\d+-\d+$/.test(r.range ?? ''))).toBe(true);
    const served = gets.reduce((s, r) => s + r.bodyBytes, 0);
    // The variant reads every tensor once (small tensors a few KB apart are read with one request, the bytes between them too).
    expect(streamed.plan.weights.bytesToRead).toBe(ck.totalSize);
    expect(streamed.profile!.streamedBytes).toBeGreaterThanOrEqual(ck.totalSize);
    expect(streamed.profile!.streamedBytes).toBeLessThan(ck.totalSize * 1.05);
    expect(served).toBeGreaterThanOrEqual(streamed.profile!.streamedBytes!);
    expect(served).toBeLessThan(streamed.profile!.streamedBytes! + 100_000); // + the shard headers
    const last = progress.at(-1)!;
    expect(last).toMatchObject({ file: 'weights from the Hub', received: streamed.profile!.streamedBytes, total: streamed.profile!.streamedBytes });
    expect(logs.join('\n')).toMatch(/read [\d.]+ MB of weights from http:\/\/127\.0\.0\.1:\d+ with Range requests/);
  }, 60_000);

  it('resumes a Range request dropped in the middle of a tensor and still writes identical files (gated repository, token)', async () => {
    const local = await folderConversion();
    const reader = await SafetensorsCheckpoint.open(await readCheckpointFolder(ck.outDir));
    const embedding = reader.byteRange(names.embedding);
    await reader.close();
    const shard = embedding.path.split('/').at(-1)!;
    const middle = embedding.position + Math.floor(embedding.length / 2);
    await startServer([{ file: shard, covering: middle, dropAfter: 100_000, times: 1 }]);
    const logs: string[] = [];
    const streamed = await convertCheckpoint(options(GATED, 'resumed', { revision: 'v1', cacheDir, log: (m) => logs.push(m), hub: { token: TOKEN } }));
    await sameFiles(streamed, local);
    const cut = server.requests.find((r) => r.path.endsWith(shard) && r.bodyBytes === 100_000)!;
    const [from, to] = /^bytes=(\d+)-(\d+)$/.exec(cut.range!)!.slice(1).map(Number);
    expect(from).toBeLessThanOrEqual(middle);
    expect(to).toBeGreaterThanOrEqual(middle);
    const resumed = server.requests.find((r) => r.range === `bytes=${from + 100_000}-${to}`)!;
    expect(resumed).toMatchObject({ status: 206, bodyBytes: to + 1 - from - 100_000 });
    expect(logs.join('\n')).toMatch(new RegExp(`${shard}: connection lost after 100000 of ${to + 1 - from} bytes`));
    expect(logs.join('\n')).toMatch(new RegExp(`${shard}: resuming at byte ${from + 100_000}`));
    // The token went with every request.
    expect(server.requests.every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
    expect((await readdir(cacheFolder(cacheDir, GATED, 'v1'))).some((f) => f.endsWith('.safetensors'))).toBe(false);
  }, 60_000);

  it('says plainly when a token is needed or the repository does not exist', async () => {
    await startServer();
    const saved = process.env.HF_TOKEN;
    delete process.env.HF_TOKEN;
    try {
      const gated = convertCheckpoint(options(GATED, 'refused', { revision: 'v1', cacheDir }));
      await expect(gated).rejects.toThrow(HubError);
      await expect(gated).rejects.toThrow(/config\.json: access denied \(HTTP 401\).*set HF_TOKEN to a Hugging Face access token/);
      const missing = convertCheckpoint(options('allenai/Molmo2-Nope', 'missing', { cacheDir }));
      await expect(missing).rejects.toThrow(HubError);
      await expect(missing).rejects.toThrow(/config\.json: not found at .*allenai\/Molmo2-Nope\/resolve\/main\/config\.json \(HTTP 404\); check the repository id and --revision/);
      await expect(convertCheckpoint(options('allenai/Molmo2 Tiny', 'bad', { cacheDir }))).rejects.toThrow(ConvertError);
      // The command line prints the message alone, without a stack trace.
      const tsx = join(import.meta.dirname, '..', 'node_modules', '.bin', 'tsx');
      const env: NodeJS.ProcessEnv = { ...process.env, HF_ENDPOINT: server.url };
      delete env.HF_TOKEN;
      const cli = await promisify(execFile)(tsx, [join(import.meta.dirname, 'convert.ts'), GATED, '--revision', 'v1', '--out', join(root, 'cli-out')], { cwd: root, env }).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => e,
      );
      expect(cli.code).toBe(1);
      expect(cli.stderr).toMatch(/^fetching the config files of allenai\/Molmo2-Gated @ v1 into .* \(the weights are streamed from the Hub\)\nerror: config\.json: access denied \(HTTP 401\) by http:\/\/127\.0\.0\.1:\d+\. The repository may be gated or private: set HF_TOKEN to a Hugging Face access token\.\n$/);
    } finally {
      if (saved !== undefined) process.env.HF_TOKEN = saved;
    }
  }, 30_000);

  it('downloads every shard first with --keep-download, and converts the same files', async () => {
    const local = await folderConversion();
    await startServer();
    const dry = await convertCheckpoint(options(STREAM, 'kept', { cacheDir, keepDownload: true, dryRun: true }));
    expect(describePlan(dry.plan).join('\n')).toMatch(/weights: downloaded into .* before converting \(--keep-download\)/);
    const kept = await convertCheckpoint(options(STREAM, 'kept', { cacheDir, keepDownload: true }));
    expect(kept.plan.weights.mode).toBe('downloaded');
    expect(kept.plan.tensorSource).toBe('safetensors headers');
    const dir = cacheFolder(cacheDir, STREAM, 'main');
    for (const f of [shard1, shard2]) expect(await same(join(dir, f), join(ck.outDir, f)), f).toBe(true);
    // Whole files, as before streaming existed.
    expect(server.requests.filter((r) => r.path.startsWith('/cdn/')).every((r) => r.range === undefined && r.status === 200)).toBe(true);
    await sameFiles(kept, local);
  }, 60_000);
});

describe('directUrlFetch', () => {
  it('reads from the download URL the resolve URL redirects to, without the token off the Hub, and falls back when it is refused', async () => {
    const calls: string[] = [];
    let refuse = false;
    const base = (async (input: string, init?: RequestInit) => {
      const headers = (init?.headers ?? {}) as Record<string, string>;
      calls.push(`${init?.method ?? 'GET'} ${input} ${headers.authorization ?? '-'} ${headers.range ?? '-'}`);
      if (init?.method === 'HEAD') return new Response(null, { status: 302, headers: { location: 'https://cdn.example/signed?x=1' } });
      if (input.startsWith('https://cdn.example/') && refuse) return new Response('expired', { status: 403 });
      return new Response('ab', { status: 206, headers: { 'content-range': 'bytes 0-1/10' } });
    }) as typeof fetch;
    const direct = directUrlFetch({ fetch: base });
    const get = () => direct('https://hub.example/o/n/resolve/c/model.safetensors', { headers: { authorization: 'Bearer t', range: 'bytes=0-1' } });
    expect((await get()).status).toBe(206);
    expect((await get()).status).toBe(206);
    refuse = true;
    expect((await get()).status).toBe(206);
    expect(calls).toEqual([
      'HEAD https://hub.example/o/n/resolve/c/model.safetensors Bearer t -',
      'GET https://cdn.example/signed?x=1 - bytes=0-1',
      'GET https://cdn.example/signed?x=1 - bytes=0-1',
      'GET https://cdn.example/signed?x=1 - bytes=0-1',
      'GET https://hub.example/o/n/resolve/c/model.safetensors Bearer t bytes=0-1',
    ]);
  });
});

describe('encoder threads on a streamed checkpoint', () => {
  it('encode blocks fetched by the threads and tiles read from the tile cache exactly as from disk', async () => {
    // A column tile of a streamed tensor is read from a copy fetched once into the tile cache.
    matrices = join(root, 'matrices');
    await mkdir(matrices, { recursive: true });
    const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * (1 + (i % 7)));
    const tensors = { a: { shape: [45, 96], data: values(45 * 96, 1) }, c: { shape: [6, 1100], data: values(6 * 1100, 2) } };
    await writeFile(join(matrices, 'model.safetensors'), writeSafetensors(Object.entries(tensors).map(([name, t]) => ({ name, dtype: 'F32' as const, shape: t.shape, data: new Uint8Array(t.data.buffer) }))));
    await writeFile(join(matrices, 'config.json'), '{}');
    await startServer();
    const hub = { endpoint: server.url, repo: MATRICES, revision: 'main' };
    const logs: string[] = [];
    const remote = await RemoteCheckpoint.open(hub, undefined, { backoffMs: 1, fetch: directUrlFetch(), log: (m) => logs.push(m) });
    // The first response holding row 20 of `a` is cut short: the thread (or the tile cache) resumes it.
    server.addFault({ file: 'model.safetensors', covering: remote.byteRange('a').position + 20 * 96 * 4, dropAfter: 1000, times: 1 });
    const local = await SafetensorsCheckpoint.open(await readCheckpointFolder(matrices));
    const tileDir = join(root, 'tiles');
    const pool = new WorkerEncoder(remote, { threads: 2, remote: { fetcher: remote.fetcher, tileDir, backoffMs: 1 }, log: (m) => logs.push(m) });
    const inline = new InlineEncoder((name) => local.read(name));
    const encodings: BlockEncoding[] = [
      { kind: 'transpose', type: 'float16' },
      { kind: 'q4', blockSize: 32, symmetric: true, scaleType: 'float16' },
      { kind: 'float', type: 'float32' },
    ];
    const requests: BlockRequest[] = encodings.flatMap((encoding) => {
      const tile = encoding.kind === 'transpose';
      return [
        { tensor: 'a', cols: 96, rowFrom: 0, rowTo: 45, colFrom: 0, colTo: 96, encoding },
        { tensor: 'a', cols: 96, rowFrom: 13, rowTo: 31, colFrom: tile ? 5 : 0, colTo: tile ? 77 : 96, encoding },
        { tensor: 'c', cols: 1100, rowFrom: 1, rowTo: 6, colFrom: tile ? 50 : 0, colTo: tile ? 1050 : 1100, encoding },
      ];
    });
    try {
      const checks: Promise<void>[] = [];
      for (const req of requests) {
        const [pooled, ref] = [await pool.submit(req), await inline.submit(req)];
        checks.push(
          Promise.all([pooled.done, ref.done]).then(([a, b]) => {
            expect(a.outputs.map((o) => o.byteLength)).toEqual(blockOutputSizes(req));
            a.outputs.forEach((o, i) => expect(Buffer.from(o).equals(Buffer.from(b.outputs[i])), `${JSON.stringify(req)} output ${i}`).toBe(true));
            a.release();
            b.release();
          }),
        );
      }
      await Promise.all(checks);
      // Whole-row jobs were fetched by the threads; the dropped connection was resumed.
      expect(pool.stats().bytesFetched).toBeGreaterThanOrEqual((45 * 96 + 18 * 96 + 5 * 1100) * 4 * 2);
      expect(logs.join('\n')).toMatch(/connection lost after 1000 of/);
      expect(existsSync(tileDir)).toBe(true);
    } finally {
      await pool.close();
      await local.close();
    }
    expect(existsSync(tileDir)).toBe(false);
    // Each tiled tensor was fetched once for its tiles (16 MiB requests at most), not once per tile.
    const tiled = server.requests.filter((r) => r.range && /^bytes=(\d+)-(\d+)$/.test(r.range) && r.bodyBytes === remote.byteRange('c').length);
    expect(tiled.length).toBe(1);
  });
});
