// Creates the onnxruntime-web sessions of a model variant on the WebGPU EP, passing each graph's
// external-data chunks as Blobs (files of the cache or of a picked folder) by the file name the graph
// refers to: onnxruntime reads them while it creates the session, so the worker does not hold the
// weights of the whole model at once.
import type { GraphFiles } from '../molmo2/manifest.ts';
import { ort, webgpuSessionOptions } from './ort.ts';
import { withOrtLog } from './ort-log.ts';
import { cpuNodesOf, type GraphPlacement } from './placement.ts';

export interface CreatedSession {
  session: ort.InferenceSession;
  /** The graph's nodes onnxruntime placed on the CPU. */
  placement: GraphPlacement;
}

function dirOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i + 1);
}

/** Bytes read at a time from a range onnxruntime streams. */
const RANGE_CHUNK = 4 << 20;

/**
 * A weight file as handed to onnxruntime: the same bytes (by reference, not copied), whose ranges
 * stream through `arrayBuffer()` of 4 MiB slices instead of the browser's own Blob stream. The JSPI
 * build reads each tensor as `blob.slice(a, b).stream()`; Chromium's stream of a large range of an
 * OPFS file sometimes never delivers its next chunk (seen with the tiny model's 58 MB fp32 embedding:
 * one load in three hung for good), and chunked `arrayBuffer()` reads do not stall.
 */
export class ChunkedBlob extends Blob {
  constructor(private readonly part: Blob) {
    super([part]);
  }

  override slice(start?: number, end?: number, contentType?: string): Blob {
    return new ChunkedBlob(this.part.slice(start, end, contentType));
  }

  override stream(): ReadableStream<Uint8Array<ArrayBuffer>> {
    const part = this.part;
    let at = 0;
    return new ReadableStream<Uint8Array<ArrayBuffer>>(
      {
        async pull(controller) {
          if (at >= part.size) return controller.close();
          const end = Math.min(part.size, at + RANGE_CHUNK);
          controller.enqueue(new Uint8Array(await part.slice(at, end).arrayBuffer()));
          at = end;
        },
      },
      { highWaterMark: 0 },
    );
  }
}

/** externalData entries: the path as the graph's `location` names it (relative to the .onnx file). */
export function externalDataFor(graph: GraphFiles, weights: Map<string, Blob>): { path: string; data: Blob }[] {
  const dir = dirOf(graph.model);
  return graph.externalData.map((p) => {
    const data = weights.get(p);
    if (!data) throw new Error(`internal: ${p} was not loaded`);
    return { path: p.startsWith(dir) ? p.slice(dir.length) : p, data: new ChunkedBlob(data) };
  });
}

/**
 * A WebGPU session for one graph, and the nodes onnxruntime places on the CPU. A first attempt with
 * CPU fallback disabled logs (captured, not printed) each node the WebGPU EP does not take, then stops
 * before any weight reaches the GPU — onnxruntime keeps small shape computations on the CPU on purpose,
 * so it normally does stop. The session kept is created with fallback allowed and quiet logging (a
 * logging session would log every GPU dispatch of every step).
 */
export async function createGraphSession(
  graph: GraphFiles,
  files: Map<string, Blob>,
  extra: ort.InferenceSession.SessionOptions = {},
): Promise<CreatedSession> {
  const modelFile = files.get(graph.model);
  if (!modelFile) throw new Error(`internal: ${graph.model} was not loaded`);
  // The graph itself is small (its weights are in the external data).
  const model = new Uint8Array(await modelFile.arrayBuffer());
  const externalData = externalDataFor(graph, files);
  const options = (probe: boolean) =>
    webgpuSessionOptions({
      ...extra,
      externalData,
      ...(probe ? { logSeverityLevel: 1 as const } : {}),
      extra: { session: { disable_cpu_ep_fallback: probe ? '1' : '0' } },
    });
  const failed = (e: unknown) => new Error(`could not create the ${graph.model} session: ${String((e as Error).message ?? e)}`);
  const probe = await withOrtLog(() =>
    ort.InferenceSession.create(model, options(true)).then(
      (s) => s.release().then(() => undefined),
      (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
    ),
  );
  // Any refusal other than "nodes on the CPU" (a bad graph, no memory) would repeat on a second try.
  if (probe.value && !FALLBACK_REFUSED.test(probe.value.message)) throw failed(probe.value);
  const placement = { graph: graph.model, cpuNodes: probe.value ? cpuNodesOf(probe.lines) : [] };
  try {
    // Its log (the same placement, as a warning) is captured too: the placement is reported instead.
    return { session: (await withOrtLog(() => ort.InferenceSession.create(model, options(false)))).value, placement };
  } catch (e) {
    throw failed(e);
  }
}

const FALLBACK_REFUSED = /fallback to CPU EP has been explicitly disabled/;

/** Element type of a graph input, from the session's metadata. */
export function inputType(session: ort.InferenceSession, name: string): ort.Tensor.Type | undefined {
  const meta = session.inputMetadata.find((m) => m.name === name);
  return meta && meta.isTensor ? meta.type : undefined;
}

export function inputShape(session: ort.InferenceSession, name: string): ReadonlyArray<number | string> | undefined {
  const meta = session.inputMetadata.find((m) => m.name === name);
  return meta && meta.isTensor ? meta.shape : undefined;
}
