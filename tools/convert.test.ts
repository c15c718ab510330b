import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Manifest } from '../src/molmo2/manifest.ts';
import { names } from '../src/molmo2/tensors.ts';
import { MOLMO2_4B_ASSETS } from './lib/assets.ts';
import { convertCheckpoint, ConvertError, planConversion, type ExportVariant } from './lib/converter.ts';
import { makeTinyCheckpoint, type TinyCheckpoint } from './lib/tiny-checkpoint.ts';
import { convertedModels } from './prepare-default-model.ts';

const REFERENCE = join(import.meta.dirname, '..', '..', 'shared', 'reference');
const hasReference = existsSync(REFERENCE);
const ROOT = join(import.meta.dirname, '..');
const run = promisify(execFile);

let root: string;
let ck: TinyCheckpoint;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'convert-'));
  ck = await makeTinyCheckpoint({ outDir: join(root, 'tiny'), seed: 5 });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Every "__MISSING__" value's dotted path, found independently of the converter. */
function placeholders(json: unknown, prefix = ''): string[] {
  if (json === '__MISSING__') return [prefix];
  if (!json || typeof json !== 'object' || Array.isArray(json)) return [];
  return Object.entries(json).flatMap(([k, v]) => placeholders(v, prefix ? `${prefix}.${k}` : k));
}

async function copyTiny(name: string, edit?: (config: Record<string, any>) => void): Promise<string> {
  const dir = join(root, name);
  await cp(ck.outDir, dir, { recursive: true });
  if (edit) {
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    edit(config);
    await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  }
  return dir;
}

const failure = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ConvertError);
    return (e as ConvertError).lines.join('\n');
  }
  throw new Error('expected the conversion to fail');
};

describe('dry run', () => {
  it('accepts the tiny checkpoint, checking tensors against the safetensors headers', async () => {
    const { plan } = await convertCheckpoint({ source: ck.outDir, dryRun: true, dtypes: ['q4', 'fp32'], targets: ['webgpu', 'cpu'], modelsDir: join(root, 'models') });
    expect(plan.tensorSource).toBe('safetensors headers');
    expect(plan.tensorCheck.ok).toBe(true);
    expect(plan.randomWeights).toBe(true);
    expect(plan.variants.map((v) => `${v.dtype}/${v.target}`)).toEqual(['q4/webgpu', 'q4/cpu', 'fp32/webgpu', 'fp32/cpu']);
    const fp32 = plan.variants.find((v) => v.dtype === 'fp32')!;
    expect(fp32.visionBytes + fp32.decoderBytes).toBe(ck.totalSize);
    expect(plan.variants[0].decoderBytes).toBeLessThan(fp32.decoderBytes / 5);
    expect(plan.files.filter((f) => !f.estimated).map((f) => f.path)).toContain('tokenizer.json');
    expect(plan.files.filter((f) => !f.estimated).map((f) => f.path)).toContain('chat_template.jinja');
    expect(plan.warnings.join('\n')).not.toMatch(/chat template/);
    expect(existsSync(join(root, 'models'))).toBe(false);
  });

  it('checks index names with derived shapes when the weights are absent (published Molmo2-4B files)', async () => {
    const { plan } = await planConversion({ source: MOLMO2_4B_ASSETS, dryRun: true });
    expect(plan.tensorSource).toBe('index names with shapes from config.json');
    expect(plan.tensorCheck.ok).toBe(true);
    expect(plan.randomWeights).toBe(false);
    expect(plan.config.text.hiddenSize).toBe(2560);
    const q4f16 = plan.variants.find((v) => v.dtype === 'q4f16')!;
    expect(q4f16.decoderBytes).toBeGreaterThan(2e9);
    expect(q4f16.decoderBytes).toBeLessThan(3.5e9);
  });

  it('derives the tensor table from config.json alone when there is no index', async () => {
    const dir = join(root, 'config-only');
    await mkdir(dir);
    await cp(join(ck.outDir, 'config.json'), join(dir, 'config.json'));
    const { plan } = await planConversion({ source: dir, dryRun: true });
    expect(plan.tensorSource).toBe('config.json only');
    expect(plan.warnings.join('\n')).toMatch(/derived from config.json only/);
    expect(plan.warnings.join('\n')).toMatch(/tokenizer.json is missing/);
    expect(plan.warnings.join('\n')).toMatch(/no chat template \(chat_template.jinja, or chat_template in tokenizer_config.json\)/);
  });

  it('warns that a chat template the app would refuse makes the converted model unusable', async () => {
    const dir = join(root, 'broken-template');
    await mkdir(dir);
    await cp(join(ck.outDir, 'config.json'), join(dir, 'config.json'));
    await writeFile(join(dir, 'chat_template.jinja'), '{% for m in messages %}{{ m.content }');
    const { plan } = await planConversion({ source: dir, dryRun: true });
    expect(plan.warnings.join('\n')).toMatch(/the chat template cannot be used, so the converted model cannot run: chat_template.jinja: it cannot be parsed/);
  });

  it.skipIf(!hasReference)('passes on the published Molmo2-4B folder and names the missing fields of the partial ones', async () => {
    const ok = await planConversion({ source: join(REFERENCE, 'molmo2-4b'), dryRun: true });
    expect(ok.plan.tensorCheck.ok).toBe(true);
    for (const partial of ['molmo2-8b', 'molmo2-videopoint-4b']) {
      const config = JSON.parse(await readFile(join(REFERENCE, partial, 'config.json'), 'utf8'));
      const expected = placeholders(config);
      expect(expected.length).toBeGreaterThan(5);
      const message = await failure(planConversion({ source: join(REFERENCE, partial), dryRun: true }));
      for (const field of expected) expect(message, partial).toContain(field);
      expect(message).not.toMatch(/text_config\.hidden_size\b/);
    }
  });

  it('stops on unsupported checkpoints with a clear reason', async () => {
    const longrope = await copyTiny('longrope', (c) => {
      c.text_config.rope_scaling = { rope_type: 'longrope', short_factor: [1], long_factor: [1] };
    });
    expect(await failure(planConversion({ source: longrope, dryRun: true }))).toMatch(/rope_scaling type "longrope" is not supported/);
    // An OLMo-style decoder over Qwen3-shaped weights: its q/k norm tensors are per head, not per projection.
    const olmo = await copyTiny('olmo', (c) => {
      c.text_config.norm_after = true;
      c.text_config.qk_norm_type = 'olmo';
    });
    expect(await failure(planConversion({ source: olmo, dryRun: true }))).toMatch(/q_norm\.weight/);
    const point = await copyTiny('point', (c) => {
      c.model_type = 'molmo_point';
      c.architectures = ['MolmoPointForConditionalGeneration'];
    });
    expect(await failure(planConversion({ source: point, dryRun: true }))).toMatch(/MolmoPoint checkpoints .* not supported/);
    expect(await failure(planConversion({ source: join(root, 'nope-folder'), dryRun: true }))).toMatch(/neither a checkpoint folder nor a Hugging Face repository id/);
  });

  it('reports tensors whose shapes disagree with config.json, and truncated shards', async () => {
    const wide = await copyTiny('wide', (c) => {
      c.text_config.intermediate_size = 60;
      c.adapter_config.intermediate_size = 60;
    });
    const message = await failure(planConversion({ source: wide, dryRun: true }));
    expect(message).toMatch(/tensor model\.transformer\.blocks\.0\.mlp\.ff_proj\.weight has shape \[112,40\], expected \[120,40\]/);
    const cut = await copyTiny('cut');
    await truncate(join(cut, 'model-00001-of-00002.safetensors'), 4096);
    expect(await failure(planConversion({ source: cut, dryRun: true }))).toMatch(/model-00001-of-00002\.safetensors is truncated/);
    await expect(planConversion({ source: ck.outDir, dtypes: ['q8' as never] })).rejects.toThrow(/unknown dtype q8/);
  });
});

describe('the convert CLI', () => {
  const cli = (...args: string[]) => run(join(ROOT, 'node_modules', '.bin', 'tsx'), [join(ROOT, 'tools', 'convert.ts'), ...args], { cwd: root }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

  it('exits 0 on a dry run of a valid checkpoint, 1 on an invalid one and 2 on bad arguments', async () => {
    const ok = await cli(ck.outDir, '--dry-run', '--dtype', 'q4f16,fp16', '--target', 'cpu');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/variant q4f16\/cpu/);
    expect(ok.stdout).toMatch(/variant fp16\/cpu/);
    const bad = await cli(ck.outDir, '--dry-run', '--target', 'wasm');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/unknown target wasm/);
    expect((await cli('--dry-run')).code).toBe(2);
    if (hasReference) {
      const partial = await cli(join(REFERENCE, 'molmo2-8b'), '--dry-run');
      expect(partial.code).toBe(1);
      expect(partial.stderr).toMatch(/missing fields.*text_config\.num_hidden_layers/);
      expect((await cli(join(REFERENCE, 'molmo2-4b'), '--dry-run')).code).toBe(0);
    }
  });
});

/** A graph builder for testing the output folder handling: it writes tensor bytes read through the WeightReader. */
function recordingBuilder(failOn?: string): ExportVariant {
  return async ({ weights, dtype, target, write }) => {
    const dir = `onnx/${target}/${dtype}`;
    const head = await weights.read(names.lmHead);
    await write(`${dir}/decoder.onnx`, new Uint8Array(head.buffer, 0, 4096));
    await write(`${dir}/decoder.onnx_data`, new Uint8Array((await weights.read(names.finalNorm)).buffer));
    if (failOn === dtype) throw new Error(`builder failed on ${dtype}`);
    await write(`${dir}/vision.onnx`, new Uint8Array((await weights.read(names.positionalEmbedding)).buffer));
    return [
      { model: `${dir}/vision.onnx`, externalData: [] },
      { model: `${dir}/decoder.onnx`, externalData: [`${dir}/decoder.onnx_data`] },
    ];
  };
}

describe('output folder', () => {
  it('publishes a complete folder with a manifest listing every file with its size and SHA-256', async () => {
    const out = join(root, 'models', 'tiny');
    const { manifest } = await convertCheckpoint({ source: ck.outDir, out, dtypes: ['q4', 'fp32'], exportVariant: recordingBuilder(), sourceLabel: { repo: 'x/tiny', revision: 'r1' } });
    const onDisk = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as Manifest;
    expect(onDisk).toEqual(manifest);
    expect(onDisk.format).toBe('molmo2-web');
    expect(onDisk.source).toEqual({ repo: 'x/tiny', revision: 'r1' });
    expect(onDisk.architecture).toMatchObject({ vitLayers: 25, vitHidden: 32, textLayers: 3, textHidden: 40, numHeads: 4, numKvHeads: 2, headDim: 16, vocabSize: 151936, parameters: ck.parameters, randomWeights: true });
    expect(onDisk.variants.map((v) => `${v.dtype}/${v.target}`)).toEqual(['q4/webgpu', 'fp32/webgpu']);
    expect(onDisk.variants[1].decoder).toEqual({ model: 'onnx/webgpu/fp32/decoder.onnx', externalData: ['onnx/webgpu/fp32/decoder.onnx_data'] });
    const listed = onDisk.files.map((f) => f.path).sort();
    const present = (await readdir(out, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(out.length + 1));
    expect([...listed, 'manifest.json'].sort()).toEqual(present.sort());
    for (const f of onDisk.files) {
      const bytes = await readFile(join(out, f.path));
      expect(bytes.byteLength, f.path).toBe(f.bytes);
      expect(createHash('sha256').update(bytes).digest('hex'), f.path).toBe(f.sha256);
    }
    expect(Buffer.compare(await readFile(join(out, 'tokenizer.json')), await readFile(join(ck.outDir, 'tokenizer.json')))).toBe(0);
    expect((await readdir(join(root, 'models'))).filter((n) => n.includes('.tmp-') || n.includes('.old-'))).toEqual([]);
    expect(await convertedModels(join(root, 'models'))).toEqual(['tiny']);
  });

  it('leaves no folder behind and keeps the previous model when the build fails', async () => {
    const models = join(root, 'models-fail');
    const out = join(models, 'tiny');
    await expect(convertCheckpoint({ source: ck.outDir, out, dtypes: ['q4'], exportVariant: recordingBuilder('q4') })).rejects.toThrow(/builder failed on q4/);
    expect(existsSync(models) ? await readdir(models) : []).toEqual([]);

    await convertCheckpoint({ source: ck.outDir, out, dtypes: ['fp32'], exportVariant: recordingBuilder() });
    const before = await readFile(join(out, 'manifest.json'), 'utf8');
    await expect(convertCheckpoint({ source: ck.outDir, out, dtypes: ['fp32', 'q4'], exportVariant: recordingBuilder('q4') })).rejects.toThrow(/builder failed/);
    expect(await readFile(join(out, 'manifest.json'), 'utf8')).toBe(before);
    expect(await readdir(models)).toEqual(['tiny']);

    // A builder that writes outside the folder is refused.
    const escaping: ExportVariant = async ({ write }) => {
      await write('../escape.onnx', new Uint8Array(1));
      return [];
    };
    await expect(convertCheckpoint({ source: ck.outDir, out, dtypes: ['fp32'], exportVariant: escaping })).rejects.toThrow(/outside the model folder/);
    expect(existsSync(join(models, 'escape.onnx'))).toBe(false);
  });

  it('removes temporary folders left by an interrupted run (dead process) but not by a live one', async () => {
    const models = join(root, 'models-stale');
    const out = join(models, 'tiny');
    // Find a pid that is not running.
    let dead = 999_999;
    while (isRunning(dead)) dead--;
    await mkdir(join(models, `tiny.tmp-${dead}`, 'onnx'), { recursive: true });
    await mkdir(join(models, `tiny.tmp-${process.ppid}`), { recursive: true });
    expect(await convertedModels(models)).toEqual([]);
    await convertCheckpoint({ source: ck.outDir, out, dtypes: ['fp32'], exportVariant: recordingBuilder() });
    expect((await readdir(models)).sort()).toEqual(['tiny', `tiny.tmp-${process.ppid}`]);
  });

  it('converts the tiny checkpoint with the real graph builder', async () => {
    const out = join(root, 'models-real', 'tiny');
    const { manifest } = await convertCheckpoint({ source: ck.outDir, out, dtypes: ['q4', 'fp32'], targets: ['webgpu'] });
    expect(manifest!.variants.length).toBe(2);
    for (const v of manifest!.variants) for (const f of [v.vision.model, v.decoder.model]) expect(existsSync(join(out, f))).toBe(true);
  });
});

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
