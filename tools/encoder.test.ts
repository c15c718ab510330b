// Streaming conversion: the fast int4 / float16 kernels against straightforward definitions, the
// worker-thread encoder against the in-thread one (every encoding, F32 / BF16 / F16 checkpoints,
// row blocks and tiles), row-block reads, and external data whose bytes arrive out of order.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockOutputSizes, InlineEncoder, type BlockEncoding, type BlockRequest } from '../src/molmo2/onnx/encode.ts';
import { float16Bits, float16Value, toFloat16 } from '../src/molmo2/fp16.ts';
import { ExternalData, type ChunkSink } from '../src/molmo2/onnx/external-data.ts';
import { q4Simd } from '../src/molmo2/onnx/q4-simd.ts';
import { quantizeQ4 } from '../src/molmo2/onnx/quant.ts';
import { writeSafetensors, type SafeDtype } from '../src/molmo2/safetensors.ts';
import { readCheckpointFolder, SafetensorsCheckpoint } from './lib/checkpoint.ts';
import { WorkerEncoder } from './lib/encoder-pool.ts';
import { HashedOutput } from './lib/hashed-output.ts';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'encoder-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * Weights that hit the kernels' corner cases: values that are exact half-integer multiples of the
 * block scale (ties of Math.round perturbed by 1/scale), equal magnitudes of both signs, zero and
 * −0 blocks, subnormals, NaN and ±∞, plus ordinary heavy-tailed values.
 */
function nastyWeights(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const w = new Float32Array(n);
  for (let b = 0; b < n; b += 32) {
    const kind = Math.floor(r() * 10);
    const scale = [0.0123, 1 / 3, 7e-3, 1.5, 3e-6, 1e-41][Math.floor(r() * 6)];
    for (let i = b; i < Math.min(n, b + 32); i++) {
      if (kind <= 2) w[i] = (Math.round(r() * 32) / 2 - 8) * scale; // multiples of scale/2 in [-8, 8]
      else if (kind === 3) w[i] = r() < 0.5 ? scale : -scale;
      else if (kind === 4) w[i] = r() < 0.5 ? 0 : -0;
      else if (kind === 5) w[i] = (r() - 0.5) * 1e-39;
      else w[i] = (r() - 0.5) * scale * (r() < 0.05 ? 30 : 1);
    }
    if (kind === 6 && b + 5 < n) w[b + 5] = NaN;
    if (kind === 7 && b + 3 < n) w[b + 3] = r() < 0.5 ? Infinity : -Infinity;
  }
  return w;
}

/** The int4 packing written as plainly as possible (Math.round per value, one code array). */
function referenceQ4(w: Float32Array, N: number, K: number, scaleType: 'float32' | 'float16') {
  const nb = Math.ceil(K / 32);
  const packed = new Uint8Array(N * nb * 16);
  const scales = scaleType === 'float16' ? new Uint16Array(N * nb) : new Float32Array(N * nb);
  const codes = new Uint8Array(32);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < nb; b++) {
      const from = n * K + b * 32;
      const len = Math.min(32, K - b * 32);
      let extreme = 0;
      for (let i = 0; i < len; i++) if (Math.abs(w[from + i]) > Math.abs(extreme)) extreme = w[from + i];
      const scale = scaleType === 'float16' ? float16Value(float16Bits(extreme / -8)) : Math.fround(extreme / -8);
      const inv = scale === 0 ? 0 : 1 / scale;
      codes.fill(8);
      for (let i = 0; i < len; i++) codes[i] = Math.min(15, Math.max(0, Math.round(w[from + i] * inv) + 8));
      for (let j = 0; j < 16; j++) packed[(n * nb + b) * 16 + j] = codes[2 * j] | (codes[2 * j + 1] << 4);
      scales[n * nb + b] = scaleType === 'float16' ? float16Bits(scale) : scale;
    }
  }
  return { packed, scales };
}

describe('fast kernels', () => {
  it('int4: equal to the plain definition on ties, signed zeros, subnormals, NaN and infinities', () => {
    for (const [N, K] of [
      [40, 96],
      [17, 72],
    ]) {
      const w = nastyWeights(N * K, N + K);
      for (const scaleType of ['float32', 'float16'] as const) {
        const q = quantizeQ4(w, N, K, { scaleType });
        const want = referenceQ4(w, N, K, scaleType);
        expect(Buffer.from(q.packed).equals(Buffer.from(want.packed)), `${scaleType} codes`).toBe(true);
        expect(Buffer.from(q.scales.buffer).equals(Buffer.from(want.scales.buffer)), `${scaleType} scales`).toBe(true);
      }
    }
  });

  it('int4 in WebAssembly SIMD: the same bytes as the JavaScript kernel, also for partial last blocks and arbitrary bit patterns', () => {
    const kernel = q4Simd();
    expect(kernel).toBeDefined(); // Node 20 has WebAssembly SIMD
    const r = rng(11);
    const bits = new Uint32Array(64 * 1024);
    for (let i = 0; i < bits.length; i++) bits[i] = (r() * 2 ** 32) >>> 0;
    const tied = nastyWeights(64 * 1024, 5);
    const bf16Like = Float32Array.from(nastyWeights(64 * 1024, 6), (v) => new Float32Array(new Uint32Array([new Uint32Array(Float32Array.of(v).buffer)[0] & 0xffff0000]).buffer)[0]);
    for (const w of [tied, bf16Like, new Float32Array(bits.buffer)]) {
      for (const K of [1024, 96, 72, 40, 31]) {
        const N = Math.floor(w.length / K);
        for (const scaleType of ['float16', 'float32'] as const) {
          const want = quantizeQ4(w.subarray(0, N * K), N, K, { scaleType });
          kernel!.input(N * K).set(w.subarray(0, N * K));
          const got = kernel!.quantize(N, K, scaleType);
          expect(Buffer.from(got.packed).equals(Buffer.from(want.packed)), `K ${K} ${scaleType} codes`).toBe(true);
          expect(Buffer.from(got.scales).equals(Buffer.from(want.scales.buffer)), `K ${K} ${scaleType} scales`).toBe(true);
        }
      }
    }
  });

  it('float16: the bulk conversion equals float16Bits on a sweep of float32 bit patterns', () => {
    const bits = new Uint32Array(1 << 20);
    for (let i = 0; i < bits.length; i++) bits[i] = Math.imul(i, 4099) >>> 0; // every 4099th pattern, all exponents
    bits.set([0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00001, 0x33000000, 0x33000001, 0x387fffff, 0x38800000, 0x477fefff, 0x477ff000, 0x47800000], 0);
    const f = new Float32Array(bits.buffer);
    const fast = toFloat16(f);
    let bad = 0;
    for (let i = 0; i < f.length; i++) if (fast[i] !== float16Bits(f[i])) bad++;
    expect(bad).toBe(0);
  });
});

async function writeCheckpoint(dtype: SafeDtype, tensors: Record<string, { shape: number[]; values: Float32Array }>): Promise<SafetensorsCheckpoint> {
  const dir = await mkdtemp(join(root, `${dtype}-`));
  const encode = (v: Float32Array) => {
    if (dtype === 'F32') return new Uint8Array(v.buffer.slice(0));
    if (dtype === 'F16') return new Uint8Array(toFloat16(v).buffer);
    const u = new Uint32Array(v.buffer.slice(0));
    return new Uint8Array(Uint16Array.from(u, (x) => x >>> 16).buffer);
  };
  const list = Object.entries(tensors).map(([name, t]) => ({ name, dtype, shape: t.shape, data: encode(t.values) }));
  await writeFile(join(dir, 'model.safetensors'), writeSafetensors(list));
  return SafetensorsCheckpoint.open(await readCheckpointFolder(dir));
}

describe('WorkerEncoder', () => {
  const tensors = { a: { shape: [45, 96], values: nastyWeights(45 * 96, 1) }, b: { shape: [7, 40], values: nastyWeights(7 * 40, 2) }, c: { shape: [6, 1100], values: nastyWeights(6 * 1100, 3) } };
  const encodings: BlockEncoding[] = [
    { kind: 'float', type: 'float16' },
    { kind: 'float', type: 'float32' },
    { kind: 'transpose', type: 'float16' },
    { kind: 'transpose', type: 'float32' },
    { kind: 'q4', blockSize: 32, symmetric: true, scaleType: 'float16' },
    { kind: 'q4', blockSize: 32, symmetric: true, scaleType: 'float32' },
    { kind: 'q4', blockSize: 16, symmetric: false, scaleType: 'float32' },
  ];
  const requests: BlockRequest[] = [];
  for (const encoding of encodings) {
    const tile = encoding.kind === 'transpose';
    requests.push({ tensor: 'a', cols: 96, rowFrom: 0, rowTo: 45, colFrom: 0, colTo: 96, encoding });
    requests.push({ tensor: 'a', cols: 96, rowFrom: 13, rowTo: 31, colFrom: tile ? 5 : 0, colTo: tile ? 77 : 96, encoding });
    requests.push({ tensor: 'b', cols: 40, rowFrom: 6, rowTo: 7, colFrom: 0, colTo: 40, encoding });
    // A wide tile is read row by row, a narrow one (above) cut from whole rows.
    requests.push({ tensor: 'c', cols: 1100, rowFrom: 1, rowTo: 6, colFrom: tile ? 50 : 0, colTo: tile ? 1050 : 1100, encoding });
  }

  for (const dtype of ['F32', 'BF16', 'F16'] as const) {
    it(`encodes ${dtype} blocks and tiles on worker threads exactly as in this thread`, async () => {
      const reader = await writeCheckpoint(dtype, tensors);
      const pool = new WorkerEncoder(reader, { threads: 2, maxAccepted: 4 });
      const inline = new InlineEncoder((name) => reader.read(name));
      const inlineRows = new InlineEncoder((name) => reader.read(name), (name, from, to) => reader.readRows(name, from, to), 2);
      try {
        // More requests than maxAccepted: submit() waits until earlier blocks are released.
        const checks: Promise<void>[] = [];
        for (const req of requests) {
          const [pooled, local, rows] = [await pool.submit(req), await inline.submit(req), await inlineRows.submit(req)];
          checks.push(
            Promise.all([pooled.done, local.done, rows.done]).then(([a, b, c]) => {
              expect(a.outputs.map((o) => o.byteLength)).toEqual(blockOutputSizes(req));
              a.outputs.forEach((o, i) => expect(Buffer.from(o).equals(Buffer.from(b.outputs[i])), `${JSON.stringify(req)} output ${i}`).toBe(true));
              c.outputs.forEach((o, i) => expect(Buffer.from(o).equals(Buffer.from(b.outputs[i])), `${JSON.stringify(req)} output ${i} (row reads)`).toBe(true));
              a.release();
              b.release();
              c.release();
            }),
          );
        }
        await Promise.all(checks);
        expect(pool.stats().jobs).toBe(requests.length);
        await expect(pool.submit({ ...requests[0], rowTo: 46 })).rejects.toThrow(/outside/);
      } finally {
        await pool.close();
        await reader.close();
      }
    });
  }

  it('reads row blocks of a tensor', async () => {
    const reader = await writeCheckpoint('BF16', tensors);
    try {
      const all = await reader.read('a');
      expect(Array.from(await reader.readRows('a', 10, 12))).toEqual(Array.from(all.subarray(10 * 96, 12 * 96)));
      await expect(reader.readRows('a', 44, 46)).rejects.toThrow(/outside/);
    } finally {
      await reader.close();
    }
  });

  it('reports a failed read of a truncated shard through the job', async () => {
    const reader = await writeCheckpoint('F32', tensors);
    const path = reader.byteRange('a').path;
    await writeFile(path, (await readFile(path)).subarray(0, 2000));
    const pool = new WorkerEncoder(reader, { threads: 1 });
    try {
      const { done } = await pool.submit(requests[0]);
      await expect(done).rejects.toThrow(/unexpected end of file/);
    } finally {
      await pool.close();
      await reader.close();
    }
  });
});

describe('external data with bytes arriving out of order', () => {
  it('streams each file in order through its sink, with the same bytes as the buffered writer', async () => {
    const pieces = Array.from({ length: 9 }, (_, i) => Uint8Array.from({ length: 100 + 37 * i }, (_, j) => (i * 31 + j) & 255));
    // Buffered: whole tensors added in order.
    const buffered = new Map<string, Uint8Array>();
    const a = new ExternalData('d', 'm', async (p, b) => void buffered.set(p, b.slice()), 1000);
    for (const p of pieces) await a.add([p]);
    await a.flush();

    // Streamed: places reserved in order, bytes stored in reverse and in two halves each.
    const out = new HashedOutput((p) => join(root, 'stream', p));
    const opened: string[] = [];
    const b = new ExternalData('d', 'm', async () => Promise.reject(new Error('unused')), 1000, async (p) => {
      opened.push(p);
      return out.open(p);
    });
    const slots = [];
    for (const p of pieces) slots.push(await b.reserve(p.byteLength));
    const stores: Promise<void>[] = [];
    for (let i = pieces.length - 1; i >= 0; i--) {
      const half = pieces[i].byteLength >> 1;
      stores.push(slots[i].put(half, pieces[i].subarray(half).slice()));
      stores.push(slots[i].put(0, pieces[i].subarray(0, half).slice()));
    }
    await Promise.all(stores);
    await b.flush();
    expect(opened).toEqual(b.paths());
    expect(b.paths()).toEqual(a.paths());
    for (const p of a.paths()) {
      const bytes = await readFile(join(root, 'stream', p));
      expect(Buffer.from(bytes).equals(Buffer.from(buffered.get(p)!)), p).toBe(true);
      expect(bytes.byteLength).toBeLessThanOrEqual(1000);
      expect(out.files.get(p)).toEqual({ path: p, bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') });
    }
  });

  it('fails as a whole when a store fails: pending stores reject, sinks are given up, flush rejects', async () => {
    const events: string[] = [];
    const sink = (p: string): ChunkSink => ({
      write: async () => void events.push(`write ${p}`),
      close: async () => void events.push(`close ${p}`),
      abort: async () => void events.push(`abort ${p}`),
    });
    const ext = new ExternalData('', 'm', async () => {}, 1000, async (p) => sink(p));
    const first = await ext.reserve(10);
    const second = await ext.reserve(10);
    const waiting = second.put(0, new Uint8Array(10)); // waits for the first tensor's bytes
    ext.track(Promise.reject(new Error('job failed')));
    await expect(waiting).rejects.toThrow(/job failed/);
    await expect(first.put(0, new Uint8Array(10))).rejects.toThrow(/job failed/);
    await expect(ext.flush()).rejects.toThrow(/job failed/);
    await expect(ext.reserve(10)).rejects.toThrow(/job failed/);
    expect(events).toEqual(['abort m.onnx_data']);
  });
});
