import { describe, expect, it } from 'vitest';
import type { Capabilities, LoadedModel, StageTimings } from '../../../workers/inference-api.ts';
import { diagnosticsText, statRows } from './diagnostics.ts';

const caps = { adapter: { vendor: 'google', architecture: 'swiftshader', description: '', isFallbackAdapter: true }, shaderF16: false } as Capabilities;
const model = {
  name: 'Molmo2-4B', dtype: 'q4', kvCache: 'static', maxContext: 4096, from: 'cache', timings: { totalMs: 2100, downloadMs: 0, prepareMs: 1500, warmUpMs: 600 },
  placement: [
    { graph: 'onnx/webgpu/vision_q4.onnx', cpuNodes: [] },
    { graph: 'onnx/webgpu/decoder_q4.onnx', cpuNodes: [{ op: 'Range', name: '/model/positions/Range' }, { op: 'Squeeze', name: 'a' }, { op: 'Squeeze', name: 'b' }] },
  ],
} as LoadedModel;
const timings: StageTimings = {
  preprocessMs: 20, visionMs: 800, prefillMs: 500, decodeMs: 2000, promptTokens: 1400, generatedTokens: 41,
  prefillTokensPerSecond: 200, decodeTokensPerSecond: 20, timeToFirstTokenMs: 1350, visualItems: 16, visionEncoded: 4,
  visionCacheHits: 12, prefixReusedTokens: 1300, prefillTokens: 100, preprocess: 'cpu', visionStageMs: 820,
};

describe('stats rows', () => {
  it('say where the time of the last question went, per frame and with cache hits', () => {
    const rows = Object.fromEntries(statRows(caps, model, timings).map((r) => [r.name, r.value]));
    expect(rows.adapter).toBe('google swiftshader, software');
    expect(rows.vision).toBe('800 ms · 200 ms per frame (4 encoded)');
    expect(rows['vision cache']).toBe('12 of 16 frames reused');
    expect(rows.preprocessing).toBe('20 ms on the CPU');
    expect(rows.prefill).toBe('100 tokens in 500 ms · 200.0 tok/s');
    expect(rows['prefix reuse']).toBe('1300 of 1400 prompt tokens');
    expect(rows['first token']).toBe('1350 ms');
    expect(rows.decode).toBe('41 tokens · 20.00 tok/s');
    expect(rows['vision placement']).toBe('every node on the GPU');
    expect(rows['decoder placement']).toBe('3 nodes on the CPU (Range, Squeeze ×2), the rest on the GPU');
    expect(rows.load).toBe('2100 ms (download 0 ms, GPU 1500 ms, warm-up 600 ms) from cache');
  });

  it('copy as plain text, and show nothing before anything was measured', () => {
    expect(statRows(undefined, undefined, undefined)).toEqual([]);
    const text = diagnosticsText(statRows(caps, undefined, undefined), 'UA/1');
    expect(text.split('\n')).toEqual(['Molmo2 Web diagnostics', 'browser: UA/1', 'adapter: google swiftshader, software', 'shader-f16: no']);
  });
});
