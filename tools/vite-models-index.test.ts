import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listBundledModels } from './vite-models-index.ts';

const graph = (name: string) => ({ model: `onnx/webgpu/${name}.onnx`, externalData: [`onnx/webgpu/${name}.onnx_data`] });

describe('listBundledModels', () => {
  it('gives each variant the bytes loading it downloads: its own graphs and the shared files, not the other variants\'', () => {
    const dir = mkdtempSync(join(tmpdir(), 'models-index-'));
    mkdirSync(join(dir, 'Demo'));
    // Two variants sharing one decoder, each with its own vision encoder; 10 bytes of shared files.
    const variants = [
      { dtype: 'q4f16', vision: graph('vision_fp16'), decoder: graph('decoder_q4f16') },
      { dtype: 'q4', vision: graph('vision_int8'), decoder: graph('decoder_q4') },
      { dtype: 'q4-int4vision', vision: graph('vision_q4'), decoder: graph('decoder_q4') },
    ];
    const sizes: Record<string, number> = { 'config.json': 4, 'tokenizer.json': 6 };
    const bytes = { vision_fp16: 100, decoder_q4f16: 1000, vision_int8: 50, decoder_q4: 2000, vision_q4: 25 };
    for (const [name, n] of Object.entries(bytes)) {
      sizes[`onnx/webgpu/${name}.onnx`] = 1;
      sizes[`onnx/webgpu/${name}.onnx_data`] = n;
    }
    const files = Object.entries(sizes).map(([path, n]) => ({ path, bytes: n, sha256: 'x' }));
    writeFileSync(join(dir, 'Demo', 'manifest.json'), JSON.stringify({ name: 'Demo', source: { repo: 'allenai/Molmo2-8B', revision: 'main' }, architecture: { randomWeights: true, parameters: 8_660_000_000 }, variants, files }));
    mkdirSync(join(dir, 'Half.tmp-123'));
    writeFileSync(join(dir, 'Half.tmp-123', 'manifest.json'), '{}');

    expect(listBundledModels(dir)).toEqual([
      {
        folder: 'Demo',
        name: 'Demo',
        randomWeights: true,
        source: { repo: 'allenai/Molmo2-8B' },
        parameters: 8_660_000_000,
        variants: [
          { dtype: 'q4f16', bytes: 10 + 101 + 1001 },
          { dtype: 'q4', bytes: 10 + 51 + 2001 },
          { dtype: 'q4-int4vision', bytes: 10 + 26 + 2001 },
        ],
      },
    ]);
  });
});
