import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertCheckpoint } from './lib/converter.ts';
import { cacheFolder, downloadCheckpoint, HubError, resolveUrl, type Progress } from './lib/hub.ts';
import { HubServer } from './lib/hub-server.ts';
import { makeTinyCheckpoint, type TinyCheckpoint } from './lib/tiny-checkpoint.ts';

const REPO = 'allenai/Molmo2-Tiny';
const GATED = 'allenai/Molmo2-Gated';
const COMMIT = '6b9348b1e7dd95f1e5fb29f77075619215f1cbaa';
const TOKEN = 'hf_test_token_123';

let root: string;
let ck: TinyCheckpoint;
let server: HubServer;
let cacheDir: string;
let shard1: string;
let shard2: string;

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
    expect(server.requests.some((r) => r.path.endsWith('.safetensors'))).toBe(false);
    expect(existsSync(join(root, 'models'))).toBe(false);
  });

  it('stops before converting when a downloaded shard is inconsistent with its header', async () => {
    await startServer();
    const dir = cacheFolder(cacheDir, REPO, 'main');
    await downloadCheckpoint({ repo: REPO, endpoint: server.url, cacheDir, ...quiet });
    // Corrupt the cached copy after download (e.g. a disk problem): the converter must notice.
    const bytes = await readFile(join(dir, shard1));
    await writeFile(join(dir, shard1), bytes.subarray(0, bytes.byteLength - 100));
    await expect(convertCheckpoint({ source: REPO, cacheDir, hub: { endpoint: server.url, ...quiet }, modelsDir: join(root, 'models') })).rejects.toThrow(
      new RegExp(`${shard1} is truncated`),
    );
  });
});
