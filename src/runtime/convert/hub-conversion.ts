// Converts a Molmo2 checkpoint on the Hugging Face Hub into a web model inside the browser: the
// checkpoint's config files are fetched, its tensors are read block by block with Range requests
// (src/molmo2/hub/), the same graph builders as `npm run convert` encode them (src/molmo2/onnx/),
// and the files are written to OPFS (staging.ts) and hashed on the way. The model's manifest is
// written last, into the model cache, once every file is in place: an interrupted conversion resumes
// and never looks complete.
import { modelChatTemplate, CHAT_TEMPLATE_FILE } from '../../molmo2/chat-template.ts';
import { decoderStyle, parseMolmo2Config, type Molmo2Config } from '../../molmo2/config.ts';
import { architectureSummary, buildManifest, CONFIG_FILES, conversionRefusal, CONVERTER_VERSION, estimateVariantBytes, REQUIRED_FILES } from '../../molmo2/conversion.ts';
import { formatBytes } from '../../molmo2/format-bytes.ts';
import { fileUrl, HubError, isRepoId, type HubRepo } from '../../molmo2/hub/location.ts';
import { RangeFetcher } from '../../molmo2/hub/range-fetch.ts';
import { RemoteCheckpoint } from '../../molmo2/hub/remote-checkpoint.ts';
import { INDEX_FILE, type SafetensorsIndex } from '../../molmo2/sharded-tensors.ts';
import { variantPrecision } from '../../molmo2/onnx/layers.ts';
import { exportVariant } from '../../molmo2/onnx/export.ts';
import { MAX_CHUNK_BYTES } from '../../molmo2/onnx/external-data.ts';
import type { Dtype, Manifest, Target } from '../../molmo2/manifest.ts';
import { modelCard, type ModelCard } from '../../molmo2/family.ts';
import type { GpuFitCheck } from '../api-types.ts';
import { gpuNeedOf, gpuShortfall } from '../device-plan.ts';
import { probeGpuFit } from '../gpu-fit.ts';
import { describeTensorCheck, checkTensors } from '../../molmo2/tensor-check.ts';
import { expectedTensors } from '../../molmo2/tensors.ts';
import { WorkerError } from '../../../workers/worker-error.ts';
import { isQuotaError, manifestId, ModelCache } from '../opfs-cache.ts';
import { ConversionStaging, jobId, pendingConversions, type ConversionKey } from './staging.ts';

export interface HubConvertRequest {
  /** e.g. https://huggingface.co */
  endpoint: string;
  repo: string;
  revision: string;
  /** Access token for gated or private repositories; kept only for this conversion. */
  token?: string;
  dtype: Dtype;
  target?: Target;
  /** Largest external-data file (default 1 GiB; tests make it small). */
  maxChunkBytes?: number;
}

export interface HubConvertPlan {
  repo: string;
  revision: string;
  /** The commit the revision resolved to, when the Hub said. */
  commit?: string;
  dtype: Dtype;
  target: Target;
  /** One line about the architecture. */
  summary: string;
  /** Bytes of the checkpoint's tensors the conversion reads. */
  readBytes: number;
  /** Estimated bytes written to browser storage. */
  writeBytes: number;
  /** Output bytes an interrupted earlier run left (kept and resumed). */
  resumableBytes: number;
  /** Free browser storage (quota − usage), when the browser says. */
  freeBytes?: number;
  randomWeights: boolean;
  /** Which family member, what it can do. */
  card: ModelCard;
  /** What the converted model will need on this GPU, and what the GPU allocated (up to that). */
  gpu: GpuFitCheck;
}

export type HubConvertStage = 'checking' | 'vision' | 'decoder' | 'saving';

export interface HubConvertProgress {
  stage: HubConvertStage;
  /** Bytes read from the Hub in this run, and the checkpoint's tensor bytes in all. */
  bytesRead: number;
  readTotal: number;
  /** Output written (resumed bytes included) and the estimate of all of it. */
  written: number;
  writeTotal: number;
  bytesPerSecond: number;
  etaSeconds?: number;
}

export interface HubConvertResult {
  /** Id of the model in the browser's model cache. */
  id: string;
  name: string;
  bytes: number;
  /** Output bytes kept from an interrupted earlier run. */
  resumedBytes: number;
  /** Bytes read from the Hub by this run. */
  bytesRead: number;
}

interface Opened {
  repo: HubRepo;
  config: Molmo2Config;
  texts: Map<string, string>;
  index?: SafetensorsIndex;
  checkpoint: RemoteCheckpoint;
  key: ConversionKey;
  dtype: Dtype;
  target: Target;
  randomWeights: boolean;
  readBytes: number;
  writeBytes: number;
  architecture: Manifest['architecture'];
  weightsBytes: number;
}

const bad = (message: string) => new WorkerError('bad-input', message);

function checkRequest(req: HubConvertRequest): void {
  if (!isRepoId(req.repo)) throw bad(`“${req.repo}” is not a Hugging Face repository id (owner/name, e.g. allenai/Molmo2-4B).`);
  if (!/^https?:\/\/[^/]+$/.test(req.endpoint.replace(/\/+$/, ''))) throw bad(`“${req.endpoint}” is not a Hub address such as https://huggingface.co.`);
  if (!req.revision.trim()) throw bad('Give a revision (a branch, tag or commit; usually main).');
}

function hubMessage(e: unknown): Error {
  if (e instanceof HubError) return new WorkerError(e.status === undefined ? 'network' : 'model-file', e.message);
  return e as Error;
}

/** Fetches the config files and shard headers, and checks everything a conversion needs. */
async function openCheckpoint(req: HubConvertRequest, signal?: AbortSignal, onBytes?: (n: number) => void): Promise<Opened> {
  checkRequest(req);
  const endpoint = req.endpoint.replace(/\/+$/, '');
  const asked: HubRepo = { endpoint, repo: req.repo, revision: req.revision.trim(), token: req.token || undefined };
  const texts = new Map<string, string>();
  const configFetcher = new RangeFetcher(asked, (f) => fileUrl(asked, f), { signal, retries: 3 });
  try {
    for (const file of CONFIG_FILES) {
      const text = await configFetcher.text(file, file !== 'config.json');
      if (text !== undefined) texts.set(file, text);
    }
  } catch (e) {
    throw hubMessage(e);
  }
  // Every later read names the commit the revision resolved to, so a push during a conversion
  // cannot mix two versions of the weights.
  const commit = configFetcher.commit;
  const repo: HubRepo = commit ? { ...asked, revision: commit } : asked;
  const parse = (file: string, text: string) => {
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new WorkerError('model-file', `${req.repo}: ${file} is not valid JSON.`);
    }
  };
  const json = (file: string) => {
    const t = texts.get(file);
    return t === undefined ? undefined : parse(file, t);
  };
  const refusal = conversionRefusal(json('config.json'));
  if (refusal) throw new WorkerError('model-file', `${req.repo}: ${refusal}.`);
  const parsed = parseMolmo2Config(json('config.json')!, json('generation_config.json'));
  if (!parsed.config) {
    const lines = [`${req.repo} is not a Molmo2 checkpoint this app can convert.`];
    if (parsed.missing.length) lines.push(`config.json lacks: ${parsed.missing.join(', ')}.`);
    lines.push(...parsed.errors);
    throw new WorkerError('model-file', lines.join(' '));
  }
  const config = parsed.config;
  const missing = REQUIRED_FILES.filter((f) => !texts.has(f));
  if (missing.length) throw new WorkerError('model-file', `${req.repo} has no ${missing.join(' or ')}; the converted model could not run without it.`);
  try {
    const tokenizerConfig = json('tokenizer_config.json');
    if (!modelChatTemplate(texts.get(CHAT_TEMPLATE_FILE), tokenizerConfig)) throw new Error(`no ${CHAT_TEMPLATE_FILE} and no chat_template in tokenizer_config.json`);
  } catch (e) {
    throw new WorkerError('model-file', `${req.repo}: its chat template cannot be used (${(e as Error).message}).`);
  }

  let index: SafetensorsIndex | undefined;
  let checkpoint: RemoteCheckpoint;
  try {
    // Without an index the weights are one model.safetensors.
    const indexText = await new RangeFetcher(repo, (f) => fileUrl(repo, f), { signal }).text(INDEX_FILE, true);
    // Not part of the converted model, so not kept with the config files.
    if (indexText !== undefined) index = parse(INDEX_FILE, indexText) as unknown as SafetensorsIndex;
    checkpoint = await RemoteCheckpoint.open(repo, index, { signal, onBytes, retries: 6 });
  } catch (e) {
    throw hubMessage(e);
  }
  if (checkpoint.problems.length) throw new WorkerError('model-file', `${req.repo}: ${checkpoint.problems.slice(0, 4).join('; ')}.`);
  const expected = expectedTensors(config);
  const check = checkTensors(checkpoint.shapes(), expected, config.vitBlocksUsed);
  if (!check.ok) throw new WorkerError('model-file', `${req.repo}: the checkpoint's tensors do not match its config.json. ${describeTensorCheck(check).join('; ')}.`);

  const dtype = req.dtype;
  const target = req.target ?? 'webgpu';
  const est = estimateVariantBytes(config, dtype);
  const copied = [...texts.values()].reduce((s, t) => s + new TextEncoder().encode(t).byteLength, 0);
  const key: ConversionKey = {
    endpoint,
    repo: req.repo,
    revision: asked.revision,
    commit,
    dtype,
    target,
    converterVersion: CONVERTER_VERSION,
    maxChunkBytes: req.maxChunkBytes ?? MAX_CHUNK_BYTES,
  };
  const meta = (index as { metadata?: Record<string, unknown> } | undefined)?.metadata;
  return {
    repo,
    config,
    texts,
    index,
    checkpoint,
    key,
    dtype,
    target,
    randomWeights: meta?.random_weights === true,
    readBytes: checkpoint.bytesOf(expected.keys()),
    writeBytes: est.vision + est.decoder + copied,
    architecture: architectureSummary(config, meta?.random_weights === true),
    weightsBytes: est.vision + est.decoder,
  };
}

async function freeStorage(): Promise<number | undefined> {
  const e = await navigator.storage.estimate().catch(() => undefined);
  return e?.quota === undefined ? undefined : Math.max(0, e.quota - (e.usage ?? 0));
}

async function resumableBytes(key: ConversionKey): Promise<number> {
  const id = await jobId(key);
  return (await pendingConversions()).find((p) => p.id === id)?.bytes ?? 0;
}

function summaryOf(c: Molmo2Config): string {
  return `ViT ${c.vitBlocksUsed} blocks × ${c.vit.hiddenSize}, decoder ${c.text.numLayers} ${decoderStyle(c.text)} × ${c.text.hiddenSize}, vocabulary ${c.text.vocabSize + c.text.additionalVocabSize}`;
}

/** The message for a conversion the browser's free storage cannot hold, or undefined when it fits (or the browser does not say). */
export function storageShortfall(plan: Pick<HubConvertPlan, 'writeBytes' | 'resumableBytes' | 'freeBytes' | 'repo'>): string | undefined {
  if (plan.freeBytes === undefined) return undefined;
  const need = plan.writeBytes - plan.resumableBytes;
  // Room for the cache copy is not needed: staged files are moved, not copied.
  if (need <= plan.freeBytes) return undefined;
  return `Converting ${plan.repo} needs about ${formatBytes(need)} more browser storage, but only ${formatBytes(plan.freeBytes)} is free for this site. Delete cached models or free disk space, then try again.`;
}

/**
 * Whether this GPU can hold the converted model (measured as the model loader does before a download),
 * or the refusal with the numbers: checked before any weight is read from the Hub.
 */
async function checkGpuFit(req: HubConvertRequest, o: Opened): Promise<GpuFitCheck> {
  const need = gpuNeedOf(o, o.dtype, o.weightsBytes);
  const probed = await probeGpuFit(need.totalBytes);
  const refusal = probed.allocatableBytes === undefined ? undefined : gpuShortfall(req.repo, o.dtype, need, probed.allocatableBytes, [], 'nothing was converted');
  return { needBytes: need.totalBytes, ...probed, ...(refusal ? { refusal } : {}) };
}

/** Checks the checkpoint, the storage and the GPU without converting anything. */
export async function planHubConversion(req: HubConvertRequest, signal?: AbortSignal): Promise<HubConvertPlan> {
  const o = await openCheckpoint(req, signal);
  const plan: HubConvertPlan = {
    repo: req.repo,
    revision: o.key.revision,
    commit: o.key.commit,
    dtype: o.dtype,
    target: o.target,
    summary: summaryOf(o.config),
    readBytes: o.readBytes,
    writeBytes: o.writeBytes,
    resumableBytes: await resumableBytes(o.key),
    freeBytes: await freeStorage(),
    randomWeights: o.randomWeights,
    card: modelCard({ name: req.repo, source: { repo: req.repo }, architecture: o.architecture }),
    gpu: await checkGpuFit(req, o),
  };
  return plan;
}

export async function convertFromHub(req: HubConvertRequest, onProgress?: (p: HubConvertProgress) => void, signal?: AbortSignal): Promise<HubConvertResult> {
  try {
    return await convert(req, onProgress, signal);
  } catch (e) {
    if (signal?.aborted) throw new WorkerError('cancelled', 'Conversion stopped. What was converted is kept: start it again to resume.');
    if (isQuotaError(e)) {
      const est = await navigator.storage.estimate().catch(() => undefined);
      const used = est?.usage === undefined ? '' : ` (this site uses ${formatBytes(est.usage)} of the ${formatBytes(est.quota ?? 0)} it may use)`;
      throw new WorkerError('limit', `The browser refused to store more of the converted model${used}. What was converted is kept: free space (delete cached models, or disk space) and start the conversion again to resume.`);
    }
    throw hubMessage(e);
  }
}

async function convert(req: HubConvertRequest, onProgress?: (p: HubConvertProgress) => void, signal?: AbortSignal): Promise<HubConvertResult> {
  let bytesRead = 0;
  let stage: HubConvertStage = 'checking';
  let staging: ConversionStaging | undefined;
  const started = performance.now();
  let lastReport = 0;
  let readTotal = 0;
  let writeTotal = 0;
  const report = (force = false) => {
    const now = performance.now();
    if (!onProgress || (!force && now - lastReport < 250)) return;
    lastReport = now;
    const seconds = Math.max(1e-3, (now - started) / 1000);
    const bytesPerSecond = bytesRead / seconds;
    const written = staging?.bytesWritten ?? 0;
    // What is left to read, judged by what is left to write.
    const leftToRead = writeTotal > 0 ? readTotal * Math.max(0, 1 - written / writeTotal) : readTotal;
    onProgress({ stage, bytesRead, readTotal, written, writeTotal, bytesPerSecond, etaSeconds: bytesPerSecond > 0 && stage !== 'checking' ? leftToRead / bytesPerSecond : undefined });
  };
  const onBytes = (n: number) => {
    bytesRead += n;
    report();
  };
  report(true);
  const o = await openCheckpoint(req, signal, onBytes);
  readTotal = o.readBytes;
  writeTotal = o.writeBytes;
  const shortfall = storageShortfall({ repo: req.repo, writeBytes: o.writeBytes, resumableBytes: await resumableBytes(o.key), freeBytes: await freeStorage() });
  if (shortfall) throw new WorkerError('limit', shortfall);
  const { refusal } = await checkGpuFit(req, o);
  if (refusal) throw new WorkerError('out-of-memory', refusal);

  staging = await ConversionStaging.open(o.key, o.writeBytes);
  try {
    for (const [file, text] of o.texts) await staging.writeFile(file, new TextEncoder().encode(text));
    stage = 'vision';
    report(true);
    const [vision, decoder] = await exportVariant({
      config: o.config,
      weights: o.checkpoint,
      dtype: o.dtype,
      target: o.target,
      write: (path, bytes) => staging!.writeFile(path, bytes),
      openChunk: (path) => staging!.openChunk(path),
      maxChunkBytes: o.key.maxChunkBytes,
      log: (m) => {
        if (m.includes('/decoder_')) stage = 'decoder';
        report(true);
      },
    });
    signal?.throwIfAborted();
    stage = 'saving';
    report(true);
    const name = req.repo.split('/')[1];
    const manifest = buildManifest(
      {
        name,
        source: { repo: req.repo, revision: o.key.commit ?? o.key.revision },
        converterVersion: CONVERTER_VERSION,
        config: o.config,
        randomWeights: o.randomWeights,
        variants: [{ target: o.target, dtype: o.dtype, vision, decoder, precision: variantPrecision(o.dtype) }],
      },
      staging.finishedFiles(),
    );
    const id = await saveToCache(staging, manifest, `${new URL(o.key.endpoint).host}/${req.repo}@${(o.key.commit ?? o.key.revision).slice(0, 12)}, converted in this browser`);
    const result: HubConvertResult = { id, name, bytes: manifest.files.reduce((s, f) => s + f.bytes, 0), resumedBytes: staging.resumedBytes, bytesRead };
    await staging.remove();
    return result;
  } catch (e) {
    // What is durable stays for the next run.
    staging.close();
    throw e;
  }
}

/** Moves the staged files into the model cache (by hash), then writes the model's record: last. */
async function saveToCache(staging: ConversionStaging, manifest: ReturnType<typeof buildManifest>, label: string): Promise<string> {
  const cache = await ModelCache.open();
  if (!cache) throw new WorkerError('model-file', 'this browser offers no storage (OPFS) for the converted model');
  for (const f of manifest.files) await cache.adopt(f.sha256, await staging.handle(f.path));
  const text = JSON.stringify(manifest);
  const id = await manifestId(text);
  await cache.saveRecord({ id, name: manifest.name, source: label, manifest, paths: manifest.files.map((f) => f.path) });
  return id;
}

