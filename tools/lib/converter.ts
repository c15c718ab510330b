// Converts a Molmo2 checkpoint (local folder or Hub repository) into a web model folder: checks the
// config and tensor table, plans the variants, has the graph builder encode the weights block by
// block on a pool of worker threads while external-data files stream to disk (hashed on the way),
// and publishes the folder atomically (written as `<out>.tmp-<pid>`, renamed at the end).
import { existsSync, rmSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { CHAT_TEMPLATE_FILE, modelChatTemplate } from '../../src/molmo2/chat-template.ts';
import type { Molmo2Config } from '../../src/molmo2/config.ts';
import { formatBytes } from '../../src/molmo2/format-bytes.ts';
import { DTYPES, TARGETS, type Dtype, type GraphFiles, type Manifest, type ModelVariant, type Target, type WeightPrecision } from '../../src/molmo2/manifest.ts';
import { decoderDtype, variantPrecision, type Q4Settings } from '../../src/molmo2/onnx/layers.ts';
import { exportVariant as buildVariant } from '../../src/molmo2/onnx/export.ts';
import { expectedTensors, type Shape } from '../../src/molmo2/tensors.ts';
import { checkConfig, checkTensors, describeTensorCheck, readCheckpointFolder, SafetensorsCheckpoint, type CheckpointFolder, type TensorCheck } from './checkpoint.ts';
import { WorkerEncoder, type EncoderStats } from './encoder-pool.ts';
import { CONFIG_FILES, downloadCheckpoint, isRepoId, type HubOptions } from './hub.ts';
import { HashedOutput, type OutputStats } from './hashed-output.ts';
import { writeManifest } from './manifest-writer.ts';

/** Builds the vision and decoder graphs of one variant: [vision, decoder]. */
export type ExportVariant = typeof buildVariant;
export const DEFAULT_DTYPES: Dtype[] = ['q4f16', 'q4'];
export const DEFAULT_TARGETS: Target[] = ['webgpu'];
export const CONVERTER_VERSION = '0.1.0';

/** A problem with the input that the user must fix; the CLI prints its lines and exits non-zero. */
export class ConvertError extends Error {
  constructor(readonly lines: string[]) {
    super(lines.join('\n'));
  }
}

export interface ConvertOptions {
  /** Hugging Face repository id (owner/name) or a local checkpoint folder. */
  source: string;
  out?: string;
  dtypes?: Dtype[];
  targets?: Target[];
  revision?: string;
  dryRun?: boolean;
  /** Where converted models go when `out` is not given. */
  modelsDir?: string;
  /** Hub download cache root. */
  cacheDir?: string;
  hub?: Partial<Pick<HubOptions, 'endpoint' | 'token' | 'retries' | 'backoffMs' | 'stallMs' | 'onProgress'>>;
  /** Display name in the manifest (default: the repository or folder name). */
  name?: string;
  /** Overrides the manifest's source (e.g. for generated checkpoints that have no repository). */
  sourceLabel?: { repo: string; revision: string };
  log?: (msg: string) => void;
  /** Graph builder to use instead of src/molmo2/onnx/export.ts (tests). */
  exportVariant?: ExportVariant;
  /** Encoder threads (default os.availableParallelism()). */
  threads?: number;
  /** MatMulNBits settings other than the defaults (benchmarks compare accuracy levels). */
  q4?: Partial<Q4Settings>;
  /** Largest external-data file (default 1 GiB); tests make it small to split a tiny model's graphs. */
  maxChunkBytes?: number;
}

export interface PlannedFile {
  path: string;
  /** Exact for copied files; an estimate for graphs. */
  bytes: number;
  estimated: boolean;
}

export interface ConvertPlan {
  source: { repo: string; revision: string; folder: string; local: boolean };
  name: string;
  outDir: string;
  config: Molmo2Config;
  randomWeights: boolean;
  /** Where the tensor table was checked from. */
  tensorSource: 'safetensors headers' | 'index names with shapes from config.json' | 'config.json only';
  tensorCheck: TensorCheck;
  /** decoderShared: the variant uses the decoder files of an earlier variant (same decoder precision and target). */
  variants: { dtype: Dtype; target: Target; visionBytes: number; decoderBytes: number; decoderShared: boolean }[];
  files: PlannedFile[];
  warnings: string[];
}

export interface ConvertResult {
  plan: ConvertPlan;
  /** Set when the model was written (not for a dry run). */
  manifest?: Manifest;
  /** Where the time went (not for a dry run). */
  profile?: ConvertProfile;
}

export interface ConvertProfile {
  seconds: number;
  /** Encoder threads: time reading blocks, decoding BF16/F16, encoding (summed over threads). */
  encoder: EncoderStats;
  /** Main thread: hashing and writing the output files. */
  output: OutputStats;
  /** Main thread: hashing the files copied from the checkpoint and writing manifest.json. */
  manifestS: number;
}

function parseList<T extends string>(values: readonly T[] | undefined, allowed: readonly T[], fallback: T[], what: string): T[] {
  const list = values && values.length ? [...new Set(values)] : fallback;
  const bad = list.filter((v) => !allowed.includes(v));
  if (bad.length) throw new ConvertError([`unknown ${what} ${bad.join(', ')} (choose from ${allowed.join(', ')})`]);
  return list;
}

/** "owner/Name" → "Name"; a folder → its last path segment; made safe as a folder name. */
export function modelNameFor(source: string): string {
  const raw = isRepoId(source) && !existsSync(source) ? source.split('/')[1] : basename(resolve(source));
  return raw.replace(/[^\w.-]/g, '_') || 'model';
}

/**
 * Bytes per parameter of a linear layer's matrix: int4 / int8 blocks of 32 with one scale each (fp16
 * scales with fp16 activations, fp32 otherwise), or float weights. Vectors (norms, biases) stay float.
 */
function matrixBytesPerParam(weights: WeightPrecision, act: 'float16' | 'float32'): number {
  const scale = act === 'float16' ? 2 : 4;
  return weights === 'int4' ? 0.5 + scale / 32 : weights === 'int8' ? 1 + scale / 32 : weights === 'float16' ? 2 : 4;
}

function estimateBytes(shapes: Shape[], weights: WeightPrecision, act: 'float16' | 'float32'): number {
  const matrix = matrixBytesPerParam(weights, act);
  const vector = act === 'float16' ? 2 : 4;
  return Math.round(shapes.reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1) * (sh.length >= 2 ? matrix : vector), 0));
}

/** Resolves the source to a folder on disk (downloading from the Hub if needed). */
async function fetchSource(opts: ConvertOptions, revision: string, log: (m: string) => void) {
  if (existsSync(opts.source)) {
    return { folder: resolve(opts.source), repo: opts.source, revision: 'local', local: true };
  }
  if (!isRepoId(opts.source)) throw new ConvertError([`"${opts.source}" is neither a checkpoint folder nor a Hugging Face repository id (owner/name)`]);
  const cacheDir = opts.cacheDir ?? join('.cache', 'hub');
  log(`${opts.dryRun ? 'fetching the config files of' : 'downloading'} ${opts.source} @ ${revision} into ${cacheDir}`);
  const dl = await downloadCheckpoint({ ...opts.hub, repo: opts.source, revision, cacheDir, configOnly: opts.dryRun, log });
  return { folder: dl.dir, repo: opts.source, revision: dl.commit ?? revision, local: false };
}

/** Checks config and tensors; throws ConvertError listing every problem found. */
export async function planConversion(opts: ConvertOptions): Promise<{ plan: ConvertPlan; folder: CheckpointFolder; reader?: SafetensorsCheckpoint }> {
  const log = opts.log ?? (() => {});
  const dtypes = parseList(opts.dtypes, DTYPES, DEFAULT_DTYPES, 'dtype');
  const targets = parseList(opts.targets, TARGETS, DEFAULT_TARGETS, 'target');
  const src = await fetchSource(opts, opts.revision ?? 'main', log);
  const folder = await readCheckpointFolder(src.folder);

  const cfg = checkConfig(folder);
  if (!cfg.config) {
    const lines = [`${src.repo}: config.json cannot be converted`];
    if (cfg.missing.length) lines.push(`missing fields (absent or "__MISSING__"): ${cfg.missing.join(', ')}`);
    lines.push(...cfg.errors);
    throw new ConvertError(lines);
  }
  const config = cfg.config;
  const expected = expectedTensors(config);

  let reader: SafetensorsCheckpoint | undefined;
  let tensorSource: ConvertPlan['tensorSource'];
  let actual: Map<string, Shape>;
  const warnings: string[] = [];
  const problems: string[] = [];
  if (folder.shards.length > 0 && folder.missingShards.length === 0) {
    reader = await SafetensorsCheckpoint.open(folder);
    problems.push(...reader.problems.map((p) => p.message));
    actual = reader.shapes();
    tensorSource = 'safetensors headers';
  } else if (folder.index) {
    // Shapes of listed tensors are taken from the config: names are what the index can check.
    actual = new Map(Object.keys(folder.index.weight_map).map((n) => [n, expected.get(n) ?? []]));
    tensorSource = 'index names with shapes from config.json';
    if (folder.missingShards.length) warnings.push(`weight files not present (${folder.missingShards.length} of ${folder.shards.length}); shapes were derived from config.json`);
  } else {
    actual = new Map(expected);
    tensorSource = 'config.json only';
    warnings.push('no model.safetensors.index.json or weights: the tensor table was derived from config.json only');
  }
  const tensorCheck = checkTensors(actual, expected, config.vitBlocksUsed);
  if (tensorSource === 'index names with shapes from config.json') {
    // An unknown name has no derived shape; report it only as unknown.
    tensorCheck.wrongShape = tensorCheck.wrongShape.filter((w) => w.actual.length > 0);
  }
  // Tensors of a broken shard would all show up as missing: the shard problem says it better.
  if (problems.length === 0) problems.push(...describeTensorCheck(tensorCheck));
  if (tensorCheck.ignored.length) warnings.push(`${tensorCheck.ignored.length} tensors not used by the model are skipped (e.g. ${tensorCheck.ignored[0]})`);
  if (problems.length) {
    await reader?.close();
    throw new ConvertError([`${src.repo}: the checkpoint's tensors do not match its config.json`, ...problems]);
  }

  const copied: PlannedFile[] = [];
  for (const f of CONFIG_FILES) {
    const p = join(folder.dir, f);
    if (existsSync(p)) copied.push({ path: f, bytes: (await readFile(p)).byteLength, estimated: false });
  }
  for (const required of ['tokenizer.json', 'generation_config.json']) {
    if (!copied.some((c) => c.path === required)) warnings.push(`${required} is missing: the converted model cannot run without it`);
  }
  const templateProblem = await chatTemplateProblem(folder.dir);
  if (templateProblem) warnings.push(templateProblem);

  const visionShapes: Shape[] = [];
  const decoderShapes: Shape[] = [];
  for (const [name, shape] of expected) (name.startsWith('model.vision_backbone.') ? visionShapes : decoderShapes).push(shape);
  const decoders = new Set<string>();
  const variants = dtypes.flatMap((dtype) =>
    targets.map((target) => {
      const p = variantPrecision(dtype);
      const key = `${target}/${decoderDtype(dtype)}`;
      const decoderShared = decoders.has(key);
      decoders.add(key);
      return { dtype, target, visionBytes: estimateBytes(visionShapes, p.vision, p.activations), decoderBytes: estimateBytes(decoderShapes, p.decoder, p.activations), decoderShared };
    }),
  );
  const name = opts.name ?? modelNameFor(opts.source);
  const outDir = resolve(opts.out ?? join(opts.modelsDir ?? join('public', 'models'), name));
  const files: PlannedFile[] = [
    ...copied,
    ...variants.flatMap((v) => [
      { path: `onnx/${v.target}/vision_${v.dtype}…`, bytes: v.visionBytes, estimated: true },
      ...(v.decoderShared ? [] : [{ path: `onnx/${v.target}/decoder_${decoderDtype(v.dtype)}…`, bytes: v.decoderBytes, estimated: true }]),
    ]),
    { path: 'manifest.json', bytes: 0, estimated: true },
  ];
  const plan: ConvertPlan = {
    source: { repo: src.repo, revision: src.revision, folder: folder.dir, local: src.local },
    name,
    outDir,
    config,
    randomWeights: folder.randomWeights,
    tensorSource,
    tensorCheck,
    variants,
    files,
    warnings,
  };
  return { plan, folder, reader };
}

export function describePlan(plan: ConvertPlan): string[] {
  const c = plan.config;
  const lines = [
    `source: ${plan.source.repo} @ ${plan.source.revision} (${plan.source.folder})${plan.randomWeights ? ' — random weights' : ''}`,
    `config: ok — ViT ${c.vitBlocksUsed} of ${c.vit.declaredLayers} blocks × ${c.vit.hiddenSize}, adapter layers [${c.adapter.vitLayers}], ` +
      `decoder ${c.text.numLayers} layers × ${c.text.hiddenSize} (${c.text.numHeads} heads / ${c.text.numKvHeads} KV × ${c.text.headDim}), vocab ${c.text.vocabSize}+${c.text.additionalVocabSize}`,
    `tensors: ${plan.tensorCheck.ok ? 'ok' : 'FAILED'} — ${[...expectedTensors(c).keys()].length} checked against ${plan.tensorSource}`,
    ...plan.warnings.map((w) => `warning: ${w}`),
    `output: ${plan.outDir}`,
    ...plan.variants.map((v) => {
      const p = variantPrecision(v.dtype);
      const decoder = `decoder ${p.decoder} ≈ ${formatBytes(v.decoderBytes)}${v.decoderShared ? ` (shared with ${decoderDtype(v.dtype)})` : ''}`;
      return `  variant ${v.dtype}/${v.target}: vision ${p.vision} ≈ ${formatBytes(v.visionBytes)}, ${decoder}, ${p.activations} activations (estimated)`;
    }),
    ...plan.files.filter((f) => !f.estimated).map((f) => `  ${f.path} (${formatBytes(f.bytes)}, copied)`),
    '  manifest.json',
  ];
  return lines;
}

/** Removes `<out>.tmp-<pid>` folders left by converter runs that are no longer alive. */
async function removeStaleTempFolders(outDir: string, log: (m: string) => void): Promise<void> {
  const parent = dirname(outDir);
  if (!existsSync(parent)) return;
  const prefix = `${basename(outDir)}.tmp-`;
  for (const entry of await readdir(parent)) {
    if (!entry.startsWith(prefix)) continue;
    const pid = Number(entry.slice(prefix.length));
    if (Number.isInteger(pid) && pid !== process.pid && !isAlive(pid)) {
      log(`removing ${join(parent, entry)} left by an interrupted run`);
      await rm(join(parent, entry), { recursive: true, force: true });
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Joins a graph builder's relative path onto the folder, refusing paths that escape it. */
function safeJoin(dir: string, relPath: string): string {
  const full = resolve(dir, relPath);
  if (!relPath || relPath.includes('\\') || !full.startsWith(dir + sep)) throw new Error(`the graph builder asked to write outside the model folder: "${relPath}"`);
  return full;
}

export async function convertCheckpoint(opts: ConvertOptions): Promise<ConvertResult> {
  const log = opts.log ?? (() => {});
  const { plan, reader } = await planConversion(opts);
  if (opts.dryRun) {
    await reader?.close();
    return { plan };
  }
  if (!reader) {
    throw new ConvertError([`${plan.source.repo}: the weight files are not present in ${plan.source.folder}; nothing to convert`]);
  }
  const missingRequired = ['tokenizer.json', 'generation_config.json'].filter((f) => !plan.files.some((p) => p.path === f));
  if (missingRequired.length) {
    await reader.close();
    throw new ConvertError([`${plan.source.repo}: ${missingRequired.join(' and ')} missing; the runtime needs them`]);
  }

  const exportVariant = opts.exportVariant ?? buildVariant;
  const outDir = plan.outDir;
  const tmp = `${outDir}.tmp-${process.pid}`;
  await removeStaleTempFolders(outDir, log);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  // Ctrl-C: remove the half-written folder instead of leaving it for the next run to clean up.
  const onSignal = (signal: NodeJS.Signals) => {
    rmSync(tmp, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const started = performance.now();
  const output = new HashedOutput((relPath) => safeJoin(tmp, relPath));
  const encoder = new WorkerEncoder(reader, { threads: opts.threads });
  try {
    for (const f of plan.files.filter((p) => !p.estimated)) await copyFile(join(plan.source.folder, f.path), join(tmp, f.path));
    const variants: ModelVariant[] = [];
    const builtDecoders = new Map<string, GraphFiles>();
    for (const v of plan.variants) {
      log(`building ${v.dtype}/${v.target}`);
      const started = performance.now();
      const decoderKey = `${v.target}/${decoderDtype(v.dtype)}`;
      const [vision, decoder] = await exportVariant({
        config: plan.config,
        weights: reader,
        dtype: v.dtype,
        target: v.target,
        log,
        write: (relPath, bytes) => output.writeFile(relPath, bytes),
        openChunk: (relPath) => output.open(relPath),
        maxChunkBytes: opts.maxChunkBytes,
        encoder,
        q4: opts.q4,
        reuseDecoder: builtDecoders.get(decoderKey),
      });
      if (!vision || !decoder) throw new Error(`the graph builder did not return vision and decoder graphs for ${v.dtype}/${v.target}`);
      builtDecoders.set(decoderKey, decoder);
      variants.push({ target: v.target, dtype: v.dtype, vision, decoder, precision: variantPrecision(v.dtype) });
      const bytes = (g: GraphFiles) => [g.model, ...g.externalData].reduce((sum, f) => sum + (output.files.get(f)?.bytes ?? 0), 0);
      log(
        `built ${v.dtype}/${v.target} in ${((performance.now() - started) / 1000).toFixed(1)} s: ` +
          `vision ${formatBytes(bytes(vision))} (${variantPrecision(v.dtype).vision}), decoder ${formatBytes(bytes(decoder))}${v.decoderShared ? ' (shared)' : ''}`,
      );
    }
    const manifestStarted = performance.now();
    const manifest = await writeManifest(tmp, {
      name: plan.name,
      source: opts.sourceLabel ?? { repo: plan.source.repo, revision: plan.source.revision },
      converterVersion: CONVERTER_VERSION,
      config: plan.config,
      randomWeights: plan.randomWeights,
      variants,
      hashed: output.files,
    });
    const manifestS = (performance.now() - manifestStarted) / 1000;
    await publish(tmp, outDir);
    log(`wrote ${outDir} (${manifest.files.length} files, ${formatBytes(manifest.files.reduce((s, f) => s + f.bytes, 0))})`);
    const profile: ConvertProfile = { seconds: (performance.now() - started) / 1000, encoder: encoder.stats(), output: { ...output.stats }, manifestS };
    return { plan, manifest, profile };
  } catch (e) {
    await encoder.close();
    await rm(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await encoder.close();
    await reader.close();
  }
}

/** Replaces `outDir` with the finished `tmp` folder; the old folder is removed only after the swap. */
async function publish(tmp: string, outDir: string): Promise<void> {
  await mkdir(dirname(outDir), { recursive: true });
  if (!existsSync(outDir)) {
    await rename(tmp, outDir);
    return;
  }
  const old = `${outDir}.old-${process.pid}`;
  await rm(old, { recursive: true, force: true });
  await rename(outDir, old);
  await rename(tmp, outDir);
  await rm(old, { recursive: true, force: true });
}

/** Why the app would refuse this checkpoint's chat template (it is read as the model loader reads it), if it would. */
async function chatTemplateProblem(dir: string): Promise<string | undefined> {
  const read = async (f: string) => (existsSync(join(dir, f)) ? readFile(join(dir, f), 'utf8') : undefined);
  try {
    const tokenizerConfig = await read('tokenizer_config.json');
    const template = modelChatTemplate(await read(CHAT_TEMPLATE_FILE), tokenizerConfig === undefined ? undefined : JSON.parse(tokenizerConfig));
    if (!template) return `no chat template (${CHAT_TEMPLATE_FILE}, or chat_template in tokenizer_config.json): the converted model cannot run without it`;
  } catch (e) {
    return `the chat template cannot be used, so the converted model cannot run: ${(e as Error).message}`;
  }
  return undefined;
}
