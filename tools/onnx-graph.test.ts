// The graph library: external-data chunking (names, file-local offsets, size limit, streaming) and
// graphs whose weights span several chunks, loaded from disk by onnxruntime.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import onnxProto from 'onnx-proto';
import { ExternalData } from '../src/molmo2/onnx/external-data.ts';
import { float, Graph } from '../src/molmo2/onnx/graph.ts';
import { ModelFile } from '../src/molmo2/onnx/model-file.ts';
import { exportVariant } from '../src/molmo2/onnx/export.ts';
import { linear } from '../src/molmo2/onnx/layers.ts';
import type { Dtype, Target } from '../src/molmo2/manifest.ts';
import { randomTensors, tinyConfig, tinyConfigJson } from '../src/molmo2/reference/testing.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function folder(): { dir: string; write: (p: string, b: Uint8Array) => Promise<void>; writes: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'onnx-graph-'));
  dirs.push(dir);
  const writes: string[] = [];
  return {
    dir,
    writes,
    write: async (p, b) => {
      writes.push(p);
      mkdirSync(dirname(join(dir, p)), { recursive: true });
      writeFileSync(join(dir, p), b);
    },
  };
}

const ramp = (n: number, s: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + s));

describe('external data', () => {
  it('fills chunks up to the limit, names them <stem>.onnx_data, _1, … and flushes each as soon as it is full', async () => {
    const f = folder();
    const ext = new ExternalData('onnx/cpu', 'm', f.write, 1000);
    const a = await ext.add([new Uint8Array(600)]);
    expect(a).toEqual({ location: 'm.onnx_data', offset: 0, length: 600 });
    expect(f.writes).toEqual([]); // still open
    const b = await ext.add([new Uint8Array(300), new Uint8Array(20)]); // 640 (aligned) + 320 = 960 ≤ 1000
    expect(b).toEqual({ location: 'm.onnx_data', offset: 640, length: 320 });
    const c = await ext.add([new Uint8Array(500)]);
    expect(c).toEqual({ location: 'm.onnx_data_1', offset: 0, length: 500 });
    expect(f.writes).toEqual(['onnx/cpu/m.onnx_data']); // the full chunk left memory before the next one filled
    await ext.flush();
    expect(ext.paths()).toEqual(['onnx/cpu/m.onnx_data', 'onnx/cpu/m.onnx_data_1']);
    expect(statSync(join(f.dir, 'onnx/cpu/m.onnx_data')).size).toBe(960);
    await expect(ext.add([new Uint8Array(1001)])).rejects.toThrow(/does not fit/);
  });

  it('writes a graph whose weights span several chunks, which onnxruntime loads from disk', async () => {
    const f = folder();
    const file = new ModelFile('onnx/cpu', 'chain', f.write, { maxChunkBytes: 4096 });
    const g = file.graph;
    const K = 24;
    let x = g.input('x', 'float32', [2, K]);
    const ws: Float32Array[] = [];
    for (let i = 0; i < 5; i++) {
      ws.push(ramp(K * K, i));
      x = g.op('Tanh', [g.op('MatMul', [x, await g.weight(`w${i}`, 'float32', [K, K], ws[i])])]); // 2304 bytes each
    }
    g.output(x, 'float32', [2, K], 'y');
    const written = await file.finish();
    expect(written.model).toBe('onnx/cpu/chain.onnx');
    expect(written.externalData).toEqual(['onnx/cpu/chain.onnx_data', 'onnx/cpu/chain.onnx_data_1', 'onnx/cpu/chain.onnx_data_2', 'onnx/cpu/chain.onnx_data_3', 'onnx/cpu/chain.onnx_data_4']);
    for (const p of written.externalData) expect(statSync(join(f.dir, p)).size).toBeLessThanOrEqual(4096);

    // The model file carries no weight bytes, only file-local references.
    const model = onnxProto.onnx.ModelProto.decode(readFileSync(join(f.dir, written.model)));
    const refs = model.graph!.initializer!.filter((t) => t.name!.startsWith('w')).map((t) => Object.fromEntries(t.externalData!.map((e) => [e.key, e.value])));
    expect(refs.map((r) => [r.location, r.offset])).toEqual([
      ['chain.onnx_data', '0'],
      ['chain.onnx_data_1', '0'],
      ['chain.onnx_data_2', '0'],
      ['chain.onnx_data_3', '0'],
      ['chain.onnx_data_4', '0'],
    ]);

    const input = ramp(2 * K, 9);
    const session = await ort.InferenceSession.create(join(f.dir, written.model));
    const y = (await session.run({ x: new ort.Tensor('float32', input, [2, K]) })).y.data as Float32Array;
    await session.release();
    let expected = Array.from(input);
    for (const w of ws) {
      const next = new Array<number>(2 * K).fill(0);
      for (let r = 0; r < 2; r++) for (let j = 0; j < K; j++) for (let k = 0; k < K; k++) next[r * K + j] += expected[r * K + k] * w[k * K + j];
      expected = next.map(Math.tanh);
    }
    expected.forEach((v, i) => expect(y[i]).toBeCloseTo(v, 5));
  });

  it('splits a linear layer too large for one chunk along its outputs', async () => {
    const f = folder();
    const file = new ModelFile('', 'big', f.write, { maxChunkBytes: 1024 });
    const g = file.graph;
    const N = 20;
    const K = 30; // 2400 bytes of float32 weight → 3 parts of ≤ 8 columns
    const w = ramp(N * K, 1);
    const bias = ramp(N, 2);
    g.input('x', 'float32', [3, K]);
    g.output(await linear(g, 'x', { name: 'fc', weight: w, N, K, bias, format: 'float32', act: 'float32' }), 'float32', [3, N], 'y');
    const written = await file.finish();
    expect(written.externalData.length).toBeGreaterThanOrEqual(3);
    const x = ramp(3 * K, 3);
    const session = await ort.InferenceSession.create(join(f.dir, written.model));
    const y = (await session.run({ x: new ort.Tensor('float32', x, [3, K]) })).y.data as Float32Array;
    await session.release();
    for (let r = 0; r < 3; r++) {
      for (let n = 0; n < N; n++) {
        let s = bias[n];
        for (let k = 0; k < K; k++) s += x[r * K + k] * w[n * K + k];
        expect(y[r * N + n]).toBeCloseTo(s, 5);
      }
    }
  });
});

describe('graph construction', () => {
  it('refuses a duplicate value name and a non-integer int attribute', () => {
    const g = new Graph('g');
    g.input('x', 'float32', [1]);
    expect(() => g.input('x', 'float32', [1])).toThrow(/already used/);
    expect(() => g.op('LeakyRelu', ['x'], { alpha: 0.1 })).toThrow(/float\(\)/);
    expect(g.op('LeakyRelu', ['x'], { alpha: float(0.1) })).toMatch(/LeakyRelu/);
  });

  it('names an output by renaming its producer, also where a subgraph reads it', async () => {
    const g = new Graph('g');
    g.input('x', 'float32', [2]);
    g.input('flag', 'bool', []);
    const a = g.op('Add', ['x', 'x']);
    const thenBranch = new Graph('then');
    thenBranch.output(thenBranch.op('Neg', [a]), 'float32', [2], 't_out');
    const elseBranch = new Graph('else');
    elseBranch.output(elseBranch.op('Abs', [a]), 'float32', [2], 'e_out');
    const [z] = g.node('If', ['flag'], { attrs: { then_branch: { graph: thenBranch }, else_branch: { graph: elseBranch } } });
    g.output(a, 'float32', [2], 'y');
    g.output(z, 'float32', [2], 'z');
    expect(g.nodes.some((n) => n.opType === 'Identity')).toBe(false);
    const session = await ort.InferenceSession.create(g.toModelBytes());
    const out = await session.run({ x: new ort.Tensor('float32', Float32Array.of(1, -2), [2]), flag: new ort.Tensor('bool', [true], []) });
    expect(Array.from(out.y.data as Float32Array)).toEqual([2, -4]);
    expect(Array.from(out.z.data as Float32Array)).toEqual([-2, 4]);
    await session.release();
  });

  it('shares identical small constants', () => {
    const g = new Graph('g');
    expect(g.int64([1, 2])).toBe(g.int64([1, 2]));
    expect(g.int64([1, 2])).not.toBe(g.int64([2, 1]));
  });
});

describe('node names', () => {
  it('names nodes after the scope they are built in, restored after an async block', async () => {
    const g = new Graph('g');
    g.input('x', 'float32', [2]);
    const y = await g.scope('/model/layers.0', async () => {
      await Promise.resolve();
      return g.scope('attn', () => g.op('Neg', ['x']));
    });
    const z = g.scope('/lm_head', () => g.op('Neg', [g.op('Neg', [y])]));
    g.op('Abs', [z]);
    expect(g.nodes.map((n) => n.name)).toEqual(['/model/layers.0/attn/Neg', '/lm_head/Neg', '/lm_head/Neg_1', '/Abs']);
    expect(y).toBe('/model/layers.0/attn/Neg/output_0');
    expect(() => g.scope('/model', () => g.scope('mlp', () => g.op('Missing', [], { bad: 0.5 })))).toThrow(/float\(\)/);
    expect(g.scopePath).toBe('');
  });

  // Head dim 16 lets the WebGPU target build its static-cache decoder (GroupQueryAttention, If branches).
  const json = tinyConfigJson();
  (json.text_config as Record<string, unknown>).head_dim = 16;
  const config = tinyConfig(json);
  const tensors = randomTensors(config, 5);

  type Node = onnxProto.onnx.INodeProto;
  /** Every node of a graph and of its subgraphs. */
  const allNodes = (nodes: Node[]): Node[] => nodes.flatMap((n) => [n, ...(n.attribute ?? []).flatMap((a) => (a.g ? allNodes(a.g.node ?? []) : []))]);

  for (const [dtype, target] of [
    ['q4', 'cpu'],
    ['q4f16', 'webgpu'],
    ['fp32', 'webgpu'],
  ] as [Dtype, Target][]) {
    it(`${dtype}/${target}: every node name is unique and starts with its block's path`, async () => {
      const files = new Map<string, Uint8Array>();
      const [vision, decoder] = await exportVariant({ config, weights: tensors, dtype, target, write: async (p, b) => void files.set(p, b) });
      const graphs = [
        { file: vision.model, root: /^\/vision\/(patch_embed|blocks\.\d+|features|pooling|projector)\//, block: /resblocks\.(\d+)\./, scope: (i: string) => `/vision/blocks.${i}/`, blocks: config.vitBlocksUsed },
        { file: decoder.model, root: /^\/(model\/(embed_tokens|positions|attn_mask|rotary|layers\.\d+|norm)|lm_head)\//, block: /(?:blocks|past_key_values|present)\.(\d+)\./, scope: (i: string) => `/model/layers.${i}/`, blocks: config.text.numLayers },
      ];
      for (const { file, root, block, scope, blocks } of graphs) {
        const model = onnxProto.onnx.ModelProto.decode(files.get(file)!);
        const nodes = allNodes(model.graph!.node ?? []);
        const names = nodes.map((n) => n.name ?? '');
        expect(new Set(names).size, file).toBe(names.length);
        for (const n of nodes) {
          expect(n.name, file).toMatch(root);
          // A node that reads or writes one layer's weights or cache belongs to that layer (a Shape
          // reads only the cache's length, for the positions).
          if (n.opType === 'Shape') continue;
          for (const value of [...(n.input ?? []), ...(n.output ?? [])]) {
            const layer = block.exec(value)?.[1];
            if (layer !== undefined) expect(n.name, `${file}: ${value}`).toContain(scope(layer));
          }
        }
        const layers = new Set(names.map((n) => /(?:layers|blocks)\.(\d+)\//.exec(n)?.[1]).filter((i) => i !== undefined));
        expect([...layers].sort(), file).toEqual(Array.from({ length: blocks }, (_, i) => String(i)).sort());
      }
      expect(files.size).toBeGreaterThan(2);
    });
  }
});
