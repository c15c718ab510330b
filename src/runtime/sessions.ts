// Creates the onnxruntime-web sessions of a model variant on the WebGPU EP from downloaded bytes,
// passing each graph's external-data chunks by the file name the graph refers to.
import type { GraphFiles } from '../molmo2/manifest.ts';
import { ort, webgpuSessionOptions } from './ort.ts';

export interface CreatedSession {
  session: ort.InferenceSession;
  /** The graph's path when some of its nodes run on the CPU EP (onnxruntime places shape computations there). */
  cpuFallback?: string;
}

function dirOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i + 1);
}

/** externalData entries: the path as the graph's `location` names it (relative to the .onnx file). */
export function externalDataFor(graph: GraphFiles, files: Map<string, Uint8Array>): { path: string; data: Uint8Array }[] {
  const dir = dirOf(graph.model);
  return graph.externalData.map((p) => {
    const data = files.get(p);
    if (!data) throw new Error(`internal: ${p} was not loaded`);
    return { path: p.startsWith(dir) ? p.slice(dir.length) : p, data };
  });
}

/**
 * A WebGPU session for one graph. CPU fallback is disabled first, so every node is known to run on the
 * GPU; a graph with an op the WebGPU EP lacks is retried with fallback allowed and reported.
 */
export async function createGraphSession(
  graph: GraphFiles,
  files: Map<string, Uint8Array>,
  extra: ort.InferenceSession.SessionOptions = {},
): Promise<CreatedSession> {
  const model = files.get(graph.model);
  if (!model) throw new Error(`internal: ${graph.model} was not loaded`);
  const externalData = externalDataFor(graph, files);
  try {
    return { session: await ort.InferenceSession.create(model, webgpuSessionOptions({ ...extra, externalData })) };
  } catch (e) {
    const message = String((e as Error).message ?? e);
    if (!/fallback|CPU|cpu/.test(message)) throw new Error(`could not create the ${graph.model} session: ${message}`);
    const session = await ort.InferenceSession.create(model, {
      ...webgpuSessionOptions({ ...extra, externalData }),
      extra: { session: { disable_cpu_ep_fallback: '0' } },
    });
    return { session, cpuFallback: graph.model };
  }
}

/** Element type of a graph input, from the session's metadata. */
export function inputType(session: ort.InferenceSession, name: string): ort.Tensor.Type | undefined {
  const meta = session.inputMetadata.find((m) => m.name === name);
  return meta && meta.isTensor ? meta.type : undefined;
}

export function inputShape(session: ort.InferenceSession, name: string): ReadonlyArray<number | string> | undefined {
  const meta = session.inputMetadata.find((m) => m.name === name);
  return meta && meta.isTensor ? meta.shape : undefined;
}
