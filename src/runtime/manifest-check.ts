// Validates a converted model's manifest.json before anything is downloaded. Pure; unit-tested.
import { DTYPES, legacyPrecision, MANIFEST_FORMAT, MANIFEST_VERSION, MANIFEST_VERSIONS_READ, TARGETS, type Dtype, type GraphFiles, type Manifest } from '../molmo2/manifest.ts';
import { WorkerError } from '../../workers/worker-error.ts';

export class ManifestError extends WorkerError {
  constructor(message: string) {
    super('model-file', message);
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const SHA256 = /^[0-9a-f]{64}$/;
const WEIGHT_PRECISIONS = ['int4', 'int8', 'float16', 'float32'];

/** A safe relative path: forward slashes, no `..`, no absolute or empty segments. */
export function isSafeRelativePath(p: unknown): p is string {
  return typeof p === 'string' && p.length > 0 && !p.startsWith('/') && !p.includes('\\') && p.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

/** Parses and checks manifest.json text; throws ManifestError with every problem found. */
export function parseManifest(text: string, where = 'manifest.json'): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ManifestError(`${where} is not valid JSON (${(e as Error).message}). Is this a converted Molmo2 model folder?`);
  }
  if (!isObj(json)) throw new ManifestError(`${where} is not a JSON object`);
  if (json.format !== MANIFEST_FORMAT) {
    const got = json.format === undefined ? 'has no "format" field' : `has format ${JSON.stringify(json.format)}`;
    throw new ManifestError(`${where} ${got}, expected "${MANIFEST_FORMAT}": this is not a model converted by \`npm run convert\``);
  }
  if (!MANIFEST_VERSIONS_READ.includes(json.formatVersion as number)) {
    const newer = typeof json.formatVersion === 'number' && json.formatVersion > MANIFEST_VERSION;
    throw new ManifestError(
      `${where} has format version ${JSON.stringify(json.formatVersion)}; this app reads versions ${MANIFEST_VERSIONS_READ.join(' and ')}. ` +
        (newer ? 'Update the app.' : 'Convert the model again with `npm run convert`.'),
    );
  }
  const problems: string[] = [];
  if (typeof json.name !== 'string' || !json.name) problems.push('name is missing');
  const arch = json.architecture;
  const archFields = ['vitLayers', 'vitHidden', 'textLayers', 'textHidden', 'numHeads', 'numKvHeads', 'headDim', 'vocabSize', 'parameters'];
  if (!isObj(arch)) problems.push('architecture is missing');
  else {
    for (const k of archFields) if (typeof arch[k] !== 'number' || !(arch[k] as number >= 0)) problems.push(`architecture.${k} must be a number`);
    if (typeof arch.randomWeights !== 'boolean') problems.push('architecture.randomWeights must be true or false');
  }
  const files = Array.isArray(json.files) ? json.files : [];
  if (!Array.isArray(json.files)) problems.push('files is missing');
  const listed = new Set<string>();
  files.forEach((f, i) => {
    if (!isObj(f) || !isSafeRelativePath(f.path)) problems.push(`files[${i}].path is not a relative path inside the folder`);
    else if (typeof f.bytes !== 'number' || !Number.isInteger(f.bytes) || f.bytes < 0) problems.push(`files[${i}] (${f.path}): bytes must be a non-negative integer`);
    else if (typeof f.sha256 !== 'string' || !SHA256.test(f.sha256)) problems.push(`files[${i}] (${f.path}): sha256 must be 64 lowercase hex digits`);
    else listed.add(f.path);
  });
  const graph = (g: unknown, what: string) => {
    if (!isObj(g) || typeof g.model !== 'string' || !Array.isArray(g.externalData)) {
      problems.push(`${what} must have a model file and an externalData list`);
      return;
    }
    for (const p of [g.model, ...(g as unknown as GraphFiles).externalData]) {
      if (!listed.has(p as string)) problems.push(`${what} refers to ${JSON.stringify(p)}, which files does not list`);
    }
    if (g.prefillChunk !== undefined && !(Number.isInteger(g.prefillChunk) && (g.prefillChunk as number) > 0)) problems.push(`${what}.prefillChunk must be a positive integer`);
  };
  const variants = Array.isArray(json.variants) ? json.variants : [];
  if (!Array.isArray(json.variants) || variants.length === 0) problems.push('variants is empty');
  variants.forEach((v, i) => {
    if (!isObj(v)) return problems.push(`variants[${i}] is not an object`);
    if (!(DTYPES as readonly unknown[]).includes(v.dtype)) problems.push(`variants[${i}].dtype ${JSON.stringify(v.dtype)} is unknown`);
    if (!(TARGETS as readonly unknown[]).includes(v.target)) problems.push(`variants[${i}].target ${JSON.stringify(v.target)} is unknown`);
    graph(v.vision, `variants[${i}].vision`);
    graph(v.decoder, `variants[${i}].decoder`);
    const precision = json.formatVersion === 1 ? undefined : v.precision;
    if (json.formatVersion !== 1 && !(isObj(precision) && [precision.vision, precision.decoder].every((p) => WEIGHT_PRECISIONS.includes(p as string)) && ['float16', 'float32'].includes(precision.activations as string))) {
      problems.push(`variants[${i}].precision must name the vision and decoder weights (${WEIGHT_PRECISIONS.join(', ')}) and the activations (float16, float32)`);
    }
  });
  for (const required of ['config.json', 'tokenizer.json']) if (!listed.has(required)) problems.push(`${required} is not in files`);
  if (problems.length) throw new ManifestError(`${where} is not usable:\n- ${problems.join('\n- ')}`);
  const manifest = json as unknown as Manifest;
  // A version-1 folder: every linear layer of q4 / q4f16 was int4.
  if (json.formatVersion === 1) for (const v of manifest.variants) v.precision = legacyPrecision(v.dtype as Dtype);
  manifest.formatVersion = MANIFEST_VERSION;
  return manifest;
}
