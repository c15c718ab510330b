// Converts a Molmo2 checkpoint (local folder or Hub repository) into a web model folder: checks the
// config and tensor table, plans the variants, has the graph builder encode the weights block by
// block on a pool of worker threads while external-data files stream to disk (hashed on the way),
// and publishes the folder atomically (written as `<out>.tmp-<pid>`, renamed at the end).
// A Hub repository's weights are streamed by default: only its config files and index are
// downloaded, the shard headers and tensor blocks are read with Range requests (the encoder threads
// fetch their own blocks); `keepDownload` downloads every shard into the cache first instead.
import { existsSync, rmSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { CHAT_TEMPLATE_FILE, modelChatTemplate } from '../../src/molmo2/chat-template.ts';
import { decoderStyle, type Molmo2Config } from '../../src/molmo2/config.ts';
import { CONVERTER_VERSION, conversionRefusal, estimateBytes, REQUIRED_FILES } from '../../src/molmo2/conversion.ts';
import { formatBytes } from '../../src/molmo2/format-bytes.ts';
import type { HubRepo } from '../../src/molmo2/hub/location.ts';
import { RemoteCheckpoint } from '../../src/molmo2/hub/remote-checkpoint.ts';
import { DTYPES, TARGETS, type Dtype, type GraphFiles, type Manifest, type ModelVariant, type Target } from '../../src/molmo2/manifest.ts';
import { decoderDtype, variantPrecision, type Q4Settings } from '../../src/molmo2/onnx/layers.ts';
import { exportVariant as buildVariant } from '../../src/molmo2/onnx/export.ts';
import { expectedTensors, type Shape } from '../../src/molmo2/tensors.ts';
import { checkConfig, checkTensors, describeTensorCheck, readCheckpointFolder, SafetensorsCheckpoint, type CheckpointFolder, type TensorCheck } from './checkpoint.ts';
import { directUrlFetch } from './direct-urls.ts';
import { WorkerEncoder, type EncoderStats } from './encoder-pool.ts';
import { CONFIG_FILES, downloadCheckpoint, hubRepo, isRepoId, type HubOptions, type Progress } from './hub.ts';
import { HashedOutput, type OutputStats } from './hashed-output.ts';
import { SmallTensorPrefetch } from './small-tensors.ts';
import { writeManifest } from './manifest-writer.ts';

/** Builds the vision and decoder graphs of one variant: [vision, decoder]. */
export type ExportVariant = typeof buildVariant;
export const DEFAULT_DTYPES: Dtype[] = ['q4f16', 'q4'];
export const DEFAULT_TARGETS: Target[] = ['webgpu'];
export { CONVERTER_VERSION };

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
  /**
   * Hub repositories: download every weight file into the cache first and convert from disk, as
   * before streaming existed (default: stream the weights with Range requests, storing only the
   * config files).
   */
  keepDownload?: boolean;
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

/** Where the weights are read from while converting. */
export interface WeightsSource {
  /** local: the checkpoint folder; downloaded: the download cache (keepDownload); streamed: the Hub, with Range requests. */
  mode: 'local' | 'downloaded' | 'streamed';
  /** The folder, or for streamed weights the Hub endpoint. */
  from: string;
  /** Bytes of checkpoint data the conversion reads (every variant reads the tensors it builds), when the shard headers were read. */
  bytesToRead?: number;
  /** The repository's weight bytes as its index states (metadata.total_size), when it does. */
  repositoryBytes?: number;
}

export interface ConvertPlan {
  source: { repo: string; revision: string; folder: string; local: boolean };
  weights: WeightsSource;
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
  /** Bytes received from the Hub while converting (streamed weights only). */
  streamedBytes?: number;
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

interface Source {
  folder: string;
  repo: string;
  revision: string;
  local: boolean;
  mode: WeightsSource['mode'];
  /** Streamed weights: where they are read from (pinned to the commit the revision resolved to, when the Hub said). */
  hub?: HubRepo;
}

/** Resolves the source to a folder on disk holding at least the config files (and the weights, unless they are streamed). */
async function fetchSource(opts: ConvertOptions, revision: string, log: (m: string) => void): Promise<Source> {
  if (existsSync(opts.source)) {
    return { folder: resolve(opts.source), repo: opts.source, revision: 'local', local: true, mode: 'local' };
  }
  if (!isRepoId(opts.source)) throw new ConvertError([`"${opts.source}" is neither a checkpoint folder nor a Hugging Face repository id (owner/name)`]);
  const cacheDir = opts.cacheDir ?? join('.cache', 'hub');
  const stream = !opts.keepDownload;
  const configOnly = stream || opts.dryRun;
  log(`${configOnly ? 'fetching the config files of' : 'downloading'} ${opts.source} @ ${revision} into ${cacheDir}${stream && !opts.dryRun ? ' (the weights are streamed from the Hub)' : ''}`);
  const dl = await downloadCheckpoint({ ...opts.hub, repo: opts.source, revision, cacheDir, configOnly, log });
  const resolved = dl.commit ?? revision;
  return {
    folder: dl.dir,
    repo: opts.source,
    revision: resolved,
    local: false,
    mode: stream ? 'streamed' : 'downloaded',
    hub: stream ? hubRepo({ ...opts.hub, repo: opts.source, revision: resolved }) : undefined,
  };
}

type Reader = SafetensorsCheckpoint | RemoteCheckpoint;

async function closeReader(reader: Reader | undefined): Promise<void> {
  if (reader instanceof SafetensorsCheckpoint) await reader.close();
}

/** Stored bytes of the tensors each variant reads: the vision tensors every time, the decoder's unless shared. */
function bytesToRead(reader: Reader, expected: Map<string, Shape>, variants: ConvertPlan['variants']): number {
  const sum = (vision: boolean) =>
    [...expected.keys()].filter((n) => n.startsWith('model.vision_backbone.') === vision && reader.has(n)).reduce((s, n) => s + reader.byteRange(n).length, 0);
  const vision = sum(true);
  const decoder = sum(false);
  return variants.reduce((s, v) => s + vision + (v.decoderShared ? 0 : decoder), 0);
}

/** Checks config and tensors; throws ConvertError listing every problem found. */
export async function planConversion(opts: ConvertOptions): Promise<{ plan: ConvertPlan; folder: CheckpointFolder; reader?: Reader }> {
  const log = opts.log ?? (() => {});
  const dtypes = parseList(opts.dtypes, DTYPES, DEFAULT_DTYPES, 'dtype');
  const targets = parseList(opts.targets, TARGETS, DEFAULT_TARGETS, 'target');
  const src = await fetchSource(opts, opts.revision ?? 'main', log);
  const folder = await readCheckpointFolder(src.folder);

  const refusal = conversionRefusal(folder.configJson);
  if (refusal) throw new ConvertError([`${src.repo}: config.json cannot be converted`, refusal]);
  const cfg = checkConfig(folder);
  if (!cfg.config) {
    const lines = [`${src.repo}: config.json cannot be converted`];
    if (cfg.missing.length) lines.push(`missing fields (absent or "__MISSING__"): ${cfg.missing.join(', ')}`);
    lines.push(...cfg.errors);
    throw new ConvertError(lines);
  }
  const config = cfg.config;
  const expected = expectedTensors(config);

  let reader: Reader | undefined;
  let tensorSource: ConvertPlan['tensorSource'];
  let actual: Map<string, Shape>;
  const warnings: string[] = [];
  const problems: string[] = [];
  if (src.hub && !opts.dryRun) {
    // Streamed: each shard's header is read with two small Range requests.
    const h = opts.hub ?? {};
    reader = await RemoteCheckpoint.open(src.hub, folder.index, { retries: h.retries, backoffMs: h.backoffMs, stallMs: h.stallMs, log, fetch: directUrlFetch() });
    problems.push(...reader.problems);
    actual = reader.shapes();
    tensorSource = 'safetensors headers';
  } else if (folder.shards.length > 0 && folder.missingShards.length === 0) {
    reader = await SafetensorsCheckpoint.open(folder);
    problems.push(...reader.problems.map((p) => p.message));
    actual = reader.shapes();
    tensorSource = 'safetensors headers';
  } else if (folder.index) {
    // Shapes of listed tensors are taken from the config: names are what the index can check.
    actual = new Map(Object.keys(folder.index.weight_map).map((n) => [n, expected.get(n) ?? []]));
    tensorSource = 'index names with shapes from config.json';
    if (src.local && folder.missingShards.length) warnings.push(`weight files not present (${folder.missingShards.length} of ${folder.shards.length}); shapes were derived from config.json`);
    if (!src.local) warnings.push('a dry run reads no weight file: the tensor names were checked against the index, their shapes derived from config.json (converting reads the shard headers first)');
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
    await closeReader(reader);
    throw new ConvertError([`${src.repo}: the checkpoint's tensors do not match its config.json`, ...problems]);
  }

  const copied: PlannedFile[] = [];
  for (const f of CONFIG_FILES) {
    const p = join(folder.dir, f);
    if (existsSync(p)) copied.push({ path: f, bytes: (await readFile(p)).byteLength, estimated: false });
  }
  for (const required of REQUIRED_FILES) {
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
  const totalSize = Number(folder.index?.metadata?.total_size);
  const weights: WeightsSource = {
    mode: src.mode,
    from: src.hub ? src.hub.endpoint : folder.dir,
    ...(reader ? { bytesToRead: bytesToRead(reader, expected, variants) } : {}),
    ...(Number.isFinite(totalSize) && totalSize > 0 ? { repositoryBytes: totalSize } : {}),
  };
  const plan: ConvertPlan = {
    source: { repo: src.repo, revision: src.revision, folder: folder.dir, local: src.local },
    weights,
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
      `decoder ${c.text.numLayers} ${decoderStyle(c.text)} × ${c.text.hiddenSize} (${c.text.numHeads} heads / ${c.text.numKvHeads} KV × ${c.text.headDim}), vocab ${c.text.vocabSize}+${c.text.additionalVocabSize}`,
    `tensors: ${plan.tensorCheck.ok ? 'ok' : 'FAILED'} — ${[...expectedTensors(c).keys()].length} checked against ${plan.tensorSource}`,
    describeWeights(plan.weights),
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

function describeWeights(w: WeightsSource): string {
  const size = (n: number | undefined, what: string) => (n === undefined ? '' : `, ${formatBytes(n)} ${what}`);
  if (w.mode === 'streamed') {
    const amount = w.bytesToRead !== undefined ? size(w.bytesToRead, 'to read') : size(w.repositoryBytes, 'in the repository');
    return `weights: streamed from ${w.from} with Range requests while converting, not downloaded${amount} (--keep-download downloads them into the cache first)`;
  }
  if (w.mode === 'downloaded') return `weights: downloaded into ${w.from} before converting (--keep-download)${size(w.repositoryBytes, 'in the repository')}`;
  return `weights: read from ${w.from}`;
}

/** Removes `<out>.tmp-<pid>` folders left by converter runs that are no longer alive. */
async function removeStaleTempFolders(outDir: string, log: (m: string) => void, prefix = `${basename(outDir)}.tmp-`): Promise<void> {
  const parent = dirname(outDir);
  if (!existsSync(parent)) return;
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
    await closeReader(reader);
    return { plan };
  }
  if (!reader) {
    throw new ConvertError([`${plan.source.repo}: the weight files are not present in ${plan.source.folder}; nothing to convert`]);
  }
  const missingRequired = REQUIRED_FILES.filter((f) => !plan.files.some((p) => p.path === f));
  if (missingRequired.length) {
    await closeReader(reader);
    throw new ConvertError([`${plan.source.repo}: ${missingRequired.join(' and ')} missing; the runtime needs them`]);
  }
  const remote = reader instanceof RemoteCheckpoint ? reader : undefined;
  // Streamed tensors that are encoded in column tiles are fetched once into this folder (removed at the end).
  const tileDir = remote ? join(plan.source.folder, `${STREAM_DIR_PREFIX}${process.pid}`) : undefined;
  if (tileDir) await removeStaleTempFolders(tileDir, log, STREAM_DIR_PREFIX);

  const exportVariant = opts.exportVariant ?? buildVariant;
  const outDir = plan.outDir;
  const tmp = `${outDir}.tmp-${process.pid}`;
  await removeStaleTempFolders(outDir, log);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  // Ctrl-C: remove the half-written folder instead of leaving it for the next run to clean up.
  const onSignal = (signal: NodeJS.Signals) => {
    rmSync(tmp, { recursive: true, force: true });
    if (tileDir) rmSync(tileDir, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const started = performance.now();
  const output = new HashedOutput((relPath) => safeJoin(tmp, relPath));
  const h = opts.hub ?? {};
  const encoder = new WorkerEncoder(reader, {
    threads: opts.threads,
    log,
    remote: remote && { fetcher: remote.fetcher, tileDir: tileDir!, retries: h.retries, backoffMs: h.backoffMs, stallMs: h.stallMs },
  });
  const streamed = remote ? streamProgress(remote, encoder, plan.weights.bytesToRead, h.onProgress) : undefined;
  // Streamed: the small tensors (norms, biases) are read together, not one round trip each.
  const weights = remote ? new SmallTensorPrefetch(remote) : reader;
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
        weights,
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
    const streamedBytes = streamed?.finish();
    if (streamedBytes !== undefined) log(`read ${formatBytes(streamedBytes)} of weights from ${plan.weights.from} with Range requests`);
    log(`wrote ${outDir} (${manifest.files.length} files, ${formatBytes(manifest.files.reduce((s, f) => s + f.bytes, 0))})`);
    const profile: ConvertProfile = { seconds: (performance.now() - started) / 1000, streamedBytes, encoder: encoder.stats(), output: { ...output.stats }, manifestS };
    return { plan, manifest, profile };
  } catch (e) {
    await encoder.close();
    await rm(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    streamed?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await encoder.close();
    await closeReader(reader);
  }
}

/** Folder (in the repository's cache folder) of a streaming run's tile cache: `<prefix><pid>`. */
const STREAM_DIR_PREFIX = '.stream-';

/**
 * Reports the bytes streamed so far (the checkpoint's own reads plus the encoder threads') against
 * the bytes the plan expects to read, once a second; finish() reports the end and returns the total.
 */
function streamProgress(remote: RemoteCheckpoint, encoder: WorkerEncoder, total: number | undefined, report?: (p: Progress) => void) {
  const started = performance.now();
  const before = remote.fetcher.bytesReceived;
  const received = () => remote.fetcher.bytesReceived - before + encoder.stats().bytesFetched;
  const progress = (done: boolean): Progress => {
    const got = received();
    const seconds = Math.max(1e-3, (performance.now() - started) / 1000);
    const bytesPerSecond = got / seconds;
    const of = done ? got : total === undefined ? undefined : Math.max(total, got);
    const etaSeconds = of !== undefined && bytesPerSecond > 0 ? (of - got) / bytesPerSecond : undefined;
    return { file: 'weights from the Hub', received: got, total: of, bytesPerSecond, etaSeconds };
  };
  const timer = report ? setInterval(() => report(progress(false)), 1000) : undefined;
  timer?.unref();
  return {
    stop: () => clearInterval(timer),
    finish: (): number => {
      clearInterval(timer);
      const last = progress(true);
      report?.(last);
      return last.received;
    },
  };
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
