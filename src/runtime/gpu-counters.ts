// Counts the GPU work a realm (page or worker) asks of WebGPU: compute dispatches per kernel, buffer
// uploads, copies, read-backs and queue submissions. It wraps the WebGPU prototypes once, so it sees
// every call onnxruntime's WebGPU EP makes (its WebGPU calls go through these JS objects), and costs
// one counter update per call. For measurements only (bench:dispatch, the device check): the app's
// workers never install it.

/** What one counted stretch of work asked of the GPU. */
export interface GpuCounts {
  /** Compute dispatches (direct and indirect). */
  dispatches: number;
  /** Dispatches per kernel: the pipeline's or its shader module's label (onnxruntime's program name). */
  byKernel: Record<string, number>;
  /** Workgroups launched by direct dispatches. */
  workgroups: number;
  /** GPUQueue.writeBuffer calls and their bytes (uploads). */
  uploads: number;
  uploadBytes: number;
  /** GPUCommandEncoder.copyBufferToBuffer calls and their bytes. */
  copies: number;
  copyBytes: number;
  /** GPUBuffer.mapAsync calls for reading (downloads) and the bytes mapped. */
  downloads: number;
  downloadBytes: number;
  /** GPUQueue.submit calls. */
  submits: number;
  /** Compute pipelines created (each compiles a shader: costly, and a sign of shapes baked into kernels). */
  pipelinesCreated: number;
  /** Buffers created and their bytes. */
  buffersCreated: number;
  bufferBytesCreated: number;
}

function zero(): GpuCounts {
  return { dispatches: 0, byKernel: {}, workgroups: 0, uploads: 0, uploadBytes: 0, copies: 0, copyBytes: 0, downloads: 0, downloadBytes: 0, submits: 0, pipelinesCreated: 0, buffersCreated: 0, bufferBytesCreated: 0 };
}

let counts = zero();
let installed = false;
/** Bytes of the buffers created and not yet destroyed, the most since resetGpuPeak, and each buffer's size. */
let liveBytes = 0;
let peakBytes = 0;
const bufferBytes = new WeakMap<GPUBuffer, number>();
const pipelineOf = new WeakMap<GPUComputePassEncoder, string>();
const labelOf = new WeakMap<GPUComputePipeline, string>();
const moduleLabel = new WeakMap<GPUShaderModule, string>();

/** Sizes in bytes of writeBuffer's data argument (a BufferSource, optionally cut by offset/size in elements). */
function writeBytes(data: BufferSource | SharedArrayBuffer, size?: number): number {
  const elementBytes = ArrayBuffer.isView(data) && 'BYTES_PER_ELEMENT' in data ? (data as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT : 1;
  if (size !== undefined) return size * elementBytes;
  return data.byteLength;
}

function wrap<T extends object, K extends keyof T>(proto: T, key: K, before: (self: T, args: unknown[]) => void, after?: (self: T, args: unknown[], result: unknown) => void): void {
  const original = proto[key] as unknown as (...args: unknown[]) => unknown;
  if (typeof original !== 'function') return;
  Object.defineProperty(proto, key, {
    configurable: true,
    writable: true,
    value: function (this: T, ...args: unknown[]) {
      before(this, args);
      const result = original.apply(this, args);
      after?.(this, args, result);
      return result;
    },
  });
}

/** Starts counting in this realm (idempotent). Returns false where there is no WebGPU. */
export function installGpuCounters(): boolean {
  if (installed) return true;
  if (typeof GPUDevice === 'undefined') return false;
  installed = true;
  const remember = (descriptor: unknown, pipeline: unknown) => {
    counts.pipelinesCreated++;
    const d = descriptor as GPUComputePipelineDescriptor | undefined;
    const label = d?.label || (d?.compute?.module && moduleLabel.get(d.compute.module)) || (pipeline as { label?: string }).label || 'unlabelled';
    labelOf.set(pipeline as GPUComputePipeline, label);
  };
  wrap(GPUDevice.prototype, 'createShaderModule', () => {}, (_d, [descriptor], module) => {
    const d = descriptor as GPUShaderModuleDescriptor;
    if (d.label) moduleLabel.set(module as GPUShaderModule, d.label);
  });
  wrap(GPUDevice.prototype, 'createComputePipeline', () => {}, (_d, [descriptor], pipeline) => remember(descriptor, pipeline));
  const asyncCreate = GPUDevice.prototype.createComputePipelineAsync;
  GPUDevice.prototype.createComputePipelineAsync = async function (descriptor) {
    const pipeline = await asyncCreate.call(this, descriptor);
    remember(descriptor, pipeline);
    return pipeline;
  };
  wrap(
    GPUDevice.prototype,
    'createBuffer',
    (_d, [descriptor]) => {
      counts.buffersCreated++;
      counts.bufferBytesCreated += (descriptor as GPUBufferDescriptor).size;
    },
    (_d, [descriptor], buffer) => {
      const size = (descriptor as GPUBufferDescriptor).size;
      bufferBytes.set(buffer as GPUBuffer, size);
      liveBytes += size;
      peakBytes = Math.max(peakBytes, liveBytes);
    },
  );
  wrap(GPUBuffer.prototype, 'destroy', (buffer) => {
    liveBytes -= bufferBytes.get(buffer) ?? 0;
    bufferBytes.delete(buffer);
  });
  wrap(GPUComputePassEncoder.prototype, 'setPipeline', (pass, [pipeline]) => pipelineOf.set(pass, labelOf.get(pipeline as GPUComputePipeline) ?? (pipeline as GPUComputePipeline).label ?? 'unlabelled'));
  const dispatched = (pass: GPUComputePassEncoder) => {
    counts.dispatches++;
    const kernel = pipelineOf.get(pass) ?? 'unknown';
    counts.byKernel[kernel] = (counts.byKernel[kernel] ?? 0) + 1;
  };
  wrap(GPUComputePassEncoder.prototype, 'dispatchWorkgroups', (pass, [x, y, z]) => {
    dispatched(pass);
    counts.workgroups += Number(x) * Number(y ?? 1) * Number(z ?? 1);
  });
  wrap(GPUComputePassEncoder.prototype, 'dispatchWorkgroupsIndirect', (pass) => dispatched(pass));
  wrap(GPUQueue.prototype, 'writeBuffer', (_q, args) => {
    counts.uploads++;
    counts.uploadBytes += writeBytes(args[2] as BufferSource, args[4] as number | undefined);
  });
  wrap(GPUQueue.prototype, 'submit', () => counts.submits++);
  wrap(GPUCommandEncoder.prototype, 'copyBufferToBuffer', (_e, args) => {
    counts.copies++;
    // copyBufferToBuffer(src, srcOffset, dst, dstOffset, size) or (src, dst, size?)
    const size = args.length >= 5 ? args[4] : typeof args[1] === 'object' ? (args[2] ?? 0) : 0;
    counts.copyBytes += Number(size ?? 0);
  });
  wrap(GPUBuffer.prototype, 'mapAsync', (buffer, [mode, , size]) => {
    if ((Number(mode) & GPUMapMode.READ) === 0) return;
    counts.downloads++;
    counts.downloadBytes += Number(size ?? buffer.size);
  });
  return true;
}

/**
 * GPU buffer bytes held now (created and not destroyed since installGpuCounters) and the most held
 * since the last resetGpuPeak: onnxruntime keeps freed buffers in its own pool, so this is the memory
 * a run really took from the GPU.
 */
export function gpuMemory(): { liveBytes: number; peakBytes: number } {
  return { liveBytes, peakBytes };
}

export function resetGpuPeak(): void {
  peakBytes = liveBytes;
}

/** The counts since the last reset (a copy). */
export function gpuCounts(): GpuCounts {
  return { ...counts, byKernel: { ...counts.byKernel } };
}

export function resetGpuCounts(): void {
  counts = zero();
}

/** b − a, for the work of one stretch between two snapshots. */
export function countsBetween(a: GpuCounts, b: GpuCounts): GpuCounts {
  const byKernel: Record<string, number> = {};
  for (const [k, n] of Object.entries(b.byKernel)) {
    const d = n - (a.byKernel[k] ?? 0);
    if (d !== 0) byKernel[k] = d;
  }
  const out = zero();
  for (const key of Object.keys(out) as (keyof GpuCounts)[]) if (key !== 'byKernel') (out[key] as number) = (b[key] as number) - (a[key] as number);
  out.byKernel = byKernel;
  return out;
}
