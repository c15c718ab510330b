import { describe, expect, it } from 'vitest';
import { isSafeRelativePath, ManifestError, parseManifest } from './manifest-check.ts';

const sha = 'b'.repeat(64);
function good(): Record<string, unknown> {
  return {
    format: 'molmo2-web',
    formatVersion: 2,
    name: 'tiny',
    source: { repo: 'x/y', revision: 'main' },
    createdAt: '',
    converterVersion: '0',
    architecture: { vitLayers: 1, vitHidden: 8, textLayers: 1, textHidden: 8, numHeads: 1, numKvHeads: 1, headDim: 8, vocabSize: 10, parameters: 100, randomWeights: true },
    variants: [
      {
        dtype: 'q4',
        target: 'webgpu',
        vision: { model: 'v.onnx', externalData: ['v.onnx_data'] },
        decoder: { model: 'd.onnx', externalData: [] },
        precision: { vision: 'int8', decoder: 'int4', activations: 'float32' },
      },
    ],
    files: ['config.json', 'tokenizer.json', 'v.onnx', 'v.onnx_data', 'd.onnx'].map((path) => ({ path, bytes: 10, sha256: sha })),
  };
}

describe('manifest validation', () => {
  it('accepts a converter manifest', () => {
    expect(parseManifest(JSON.stringify(good())).name).toBe('tiny');
  });

  it('explains what is wrong with other files', () => {
    expect(() => parseManifest('<html>')).toThrow(/not valid JSON.*converted Molmo2 model folder/);
    expect(() => parseManifest(JSON.stringify({ ...good(), format: 'other' }))).toThrow(/not a model converted by `npm run convert`/);
    expect(() => parseManifest(JSON.stringify({ hello: 'world' }))).toThrow(/has no "format" field.*not a model converted by `npm run convert`/);
    expect(() => parseManifest(JSON.stringify({ ...good(), formatVersion: 3 }))).toThrow(/reads versions 1 and 2\. Update the app/);
    expect(() => parseManifest(JSON.stringify({ ...good(), formatVersion: 0 }))).toThrow(/Convert the model again/);
  });

  it('reads a version-1 manifest, whose q4 variants had an int4 vision encoder', () => {
    const m = good();
    m.formatVersion = 1;
    delete (m.variants as Record<string, unknown>[])[0].precision;
    const parsed = parseManifest(JSON.stringify(m));
    expect(parsed.variants[0].precision).toEqual({ vision: 'int4', decoder: 'int4', activations: 'float32' });
  });

  it('refuses a version-2 variant without its precision', () => {
    const m = good();
    (m.variants as Record<string, unknown>[])[0].precision = { vision: 'int3', decoder: 'int4', activations: 'float32' };
    expect(() => parseManifest(JSON.stringify(m))).toThrow(/variants\[0\]\.precision must name/);
  });

  it('lists every problem: unknown dtypes, missing files, bad hashes, paths outside the folder', () => {
    const m = good();
    (m.variants as Record<string, unknown>[])[0].dtype = 'int3';
    (m.files as Record<string, unknown>[])[3] = { path: '../../etc/passwd', bytes: 1, sha256: sha };
    (m.files as Record<string, unknown>[])[0].sha256 = 'nope';
    let message = '';
    try {
      parseManifest(JSON.stringify(m));
    } catch (e) {
      expect(e).toBeInstanceOf(ManifestError);
      message = (e as Error).message;
    }
    expect(message).toContain('dtype "int3" is unknown');
    expect(message).toContain('not a relative path inside the folder');
    expect(message).toContain('v.onnx_data');
    expect(message).toContain('config.json');
  });

  it('recognises safe relative paths', () => {
    expect(isSafeRelativePath('onnx/webgpu/a.onnx')).toBe(true);
    for (const p of ['/abs', 'a/../b', 'a//b', 'a\\b', '', './a']) expect(isSafeRelativePath(p)).toBe(false);
  });
});
