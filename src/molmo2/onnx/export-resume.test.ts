// An interrupted conversion resumes: external-data files that an earlier run wrote in part (their
// `stored` prefix) keep those bytes, the builders neither read nor encode the weight blocks inside
// them, and the finished files are byte for byte those of an uninterrupted run. The browser's Hub
// conversion (src/runtime/convert/staging.ts) relies on this after a reload or a dropped network.
import { describe, expect, it } from 'vitest';
import type { Dtype, Target } from '../manifest.ts';
import { randomTensors, tinyConfig } from '../reference/testing.ts';
import { exportVariant } from './export.ts';
import type { ChunkSink } from './external-data.ts';

const config = tinyConfig();
const tensors = randomTensors(config, 3);

/** The checkpoint's tensors, counting the values read (whole tensors and row blocks). */
function countingWeights() {
  const counter = { values: 0 };
  const weights = {
    shape: (n: string) => tensors.shape(n),
    read: async (n: string) => {
      const d = await tensors.read(n);
      counter.values += d.length;
      return d;
    },
    readRows: async (n: string, from: number, to: number) => {
      const shape = tensors.shape(n);
      const cols = shape.slice(1).reduce((a, b) => a * b, 1);
      counter.values += (to - from) * cols;
      return (await tensors.read(n)).slice(from * cols, to * cols);
    },
  };
  return { weights, counter };
}

const concat = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
};

/**
 * Runs one export into `files`; sinks start from what `files` holds for their path (as a resumed
 * browser conversion does) and the run stops with an error once `stopAfter` new bytes were written.
 */
async function run(dtype: Dtype, target: Target, files: Map<string, Uint8Array>, stopAfter = Infinity) {
  const { weights, counter } = countingWeights();
  let written = 0;
  const openChunk = async (path: string): Promise<ChunkSink> => {
    const parts = [files.get(path) ?? new Uint8Array(0)];
    const save = () => files.set(path, concat(parts));
    return {
      stored: parts[0].byteLength,
      async write(bytes) {
        if (written + bytes.byteLength > stopAfter) {
          // Half of this piece lands before the interruption: a prefix that ends mid-tensor.
          parts.push(bytes.slice(0, Math.floor(bytes.byteLength / 2)));
          save();
          throw new Error('interrupted');
        }
        written += bytes.byteLength;
        parts.push(bytes.slice());
        save();
      },
      async close() {
        save();
      },
      async abort() {
        save();
      },
    };
  };
  const write = async (p: string, b: Uint8Array) => void files.set(p, b.slice());
  await exportVariant({ config, weights, dtype, target, write, openChunk, maxChunkBytes: 1 << 16 });
  return counter.values;
}

describe('a resumed export', () => {
  for (const [dtype, target] of [
    ['q4', 'webgpu'],
    ['q4f16', 'cpu'],
    ['fp32', 'webgpu'],
  ] as [Dtype, Target][]) {
    it(`${dtype}/${target}: keeps the bytes written before the interruption, skips their weights, and ends with the uninterrupted files`, async () => {
      const clean = new Map<string, Uint8Array>();
      const allReads = await run(dtype, target, clean);
      const total = [...clean].filter(([p]) => p.includes('.onnx_data')).reduce((s, [, b]) => s + b.byteLength, 0);
      expect([...clean.keys()].filter((p) => p.includes('.onnx_data')).length).toBeGreaterThan(2);

      const resumed = new Map<string, Uint8Array>();
      await expect(run(dtype, target, resumed, Math.floor(total * 0.6))).rejects.toThrow('interrupted');
      const kept = [...resumed].filter(([p]) => p.includes('.onnx_data')).reduce((s, [, b]) => s + b.byteLength, 0);
      expect(kept).toBeGreaterThan(total * 0.5);
      const resumedReads = await run(dtype, target, resumed);

      expect([...resumed.keys()].sort()).toEqual([...clean.keys()].sort());
      for (const [path, bytes] of clean) expect(Buffer.from(resumed.get(path)!).equals(Buffer.from(bytes)), path).toBe(true);
      // The weights behind the kept bytes were not read again.
      expect(resumedReads).toBeLessThan(allReads * 0.7);
    });
  }

  it('refuses a file that holds more bytes than the conversion writes (another conversion’s file)', async () => {
    const files = new Map<string, Uint8Array>();
    await run('q4', 'webgpu', files);
    const [path, bytes] = [...files].find(([p]) => p.endsWith('.onnx_data'))!;
    files.set(path, concat([bytes, new Uint8Array(100)]));
    await expect(run('q4', 'webgpu', files)).rejects.toThrow(/holds \d+ bytes from an earlier run, more than the \d+ this conversion writes/);
  });
});
