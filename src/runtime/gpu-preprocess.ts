// GPU preprocessing: images or video frames → pixel_values [numCrops, patches, patchDim] float32 written
// by a WGSL compute pass into one GPU buffer on the given device (onnxruntime's own, so the buffer can
// be the vision session's input through ort.Tensor.fromGpuBuffer). Same tensor as the CPU path
// (src/molmo2/image.ts): the shader uses the CPU path's taps, weights and normalisation table.
import type { ProcessorSettings } from '../molmo2/config.ts';
import { cropLength, planImage, type CropGeometry, type ImagePlan } from '../molmo2/image.ts';
import { imageLayout, normalisationLut, videoFrameLayout, type SourceLayout } from './gpu-preprocess-layout.ts';
import { SourceBinder, sourceSize, type GpuImageSource, type SourceMethod } from './gpu-preprocess-source.ts';
import shaderBody from './gpu-preprocess.wgsl?raw';

export type { GpuImageSource, SourceMethod } from './gpu-preprocess-source.ts';

const WORKGROUP = 16;

export interface GpuPixels {
  /** STORAGE | COPY_SRC buffer holding [numCrops, patches, patchDim] float32; the caller owns it. */
  buffer: GPUBuffer;
  numCrops: number;
  dims: [number, number, number];
  /** How each source reached the GPU, in order. */
  methods: SourceMethod[];
}

const TEXTURE_2D = `@group(0) @binding(0) var src: texture_2d<f32>;
fn loadRgb(p: vec2u) -> vec3f { return textureLoad(src, p, 0).rgb; }
`;
const TEXTURE_EXTERNAL = `@group(0) @binding(0) var src: texture_external;
fn loadRgb(p: vec2u) -> vec3f { return textureLoad(src, p).rgb; }
`;

/** True when this device can run the preprocessing pass at all (compute + storage buffers). */
export function gpuPreprocessAvailable(device: GPUDevice | undefined): device is GPUDevice {
  return Boolean(device && typeof device.createComputePipeline === 'function' && device.limits.maxStorageBuffersPerShaderStage >= 4);
}

export class GpuPreprocessor {
  private binder: SourceBinder;
  private luts = new Map<string, GPUBuffer>();
  private layouts = new Map<string, { layout: SourceLayout; taps: GPUBuffer; crops: GPUBuffer }>();
  private externalPipeline: Promise<GPUComputePipeline> | undefined;

  private constructor(
    readonly device: GPUDevice,
    private texturePipeline: GPUComputePipeline,
  ) {
    this.binder = new SourceBinder(device);
  }

  /** Compiles the pass on `device` (throws when it does not compile there). */
  static async create(device: GPUDevice): Promise<GpuPreprocessor> {
    return new GpuPreprocessor(device, await compile(device, TEXTURE_2D));
  }

  /** pixel_values of images in order: each image's global view, then its hi-res crops. */
  images(sources: GpuImageSource[], settings: ProcessorSettings, geometry: CropGeometry, plans?: ImagePlan[]): Promise<GpuPixels> {
    return this.run(
      sources.map((s, i) => {
        const plan = plans?.[i] ?? planImage(sourceSize(s).width, sourceSize(s).height, settings, geometry);
        return { source: s, key: `image ${plan.width}x${plan.height} ${plan.rows}x${plan.cols}`, make: () => imageLayout(plan, settings, geometry) };
      }),
      settings,
      geometry,
    );
  }

  /** pixel_values of video frames in order, one stretched crop each. */
  videoFrames(sources: GpuImageSource[], settings: ProcessorSettings, geometry: CropGeometry): Promise<GpuPixels> {
    return this.run(
      sources.map((s) => {
        const { width, height } = sourceSize(s);
        return { source: s, key: `frame ${width}x${height}`, make: () => videoFrameLayout(width, height, geometry) };
      }),
      settings,
      geometry,
    );
  }

  private async run(jobs: { source: GpuImageSource; key: string; make: () => SourceLayout }[], settings: ProcessorSettings, geometry: CropGeometry): Promise<GpuPixels> {
    const d = this.device;
    const laid = jobs.map((j) => ({ ...j, ...this.layoutFor(`${j.key} ${geometry.cropSize}/${geometry.patchSize} ${settings.overlapMargins}`, j.make) }));
    const numCrops = laid.reduce((s, j) => s + j.layout.numCrops, 0);
    const n = geometry.cropSize / geometry.patchSize;
    const dims: [number, number, number] = [numCrops, n * n, geometry.patchSize ** 2 * 3];
    const bytes = numCrops * cropLength(geometry) * 4;
    if (bytes > d.limits.maxStorageBufferBindingSize || bytes > d.limits.maxBufferSize) {
      throw new Error(`pixel values of ${numCrops} crops (${bytes} bytes) exceed this GPU's buffer limits`);
    }
    const out = d.createBuffer({ size: Math.max(bytes, 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    const lut = this.lutFor(settings);
    const methods: SourceMethod[] = [];
    const scratch: GPUBuffer[] = [];
    try {
      let first = 0;
      for (const j of laid) {
        const bound = await this.binder.bind(j.source);
        try {
          if (bound.width !== j.layout.width || bound.height !== j.layout.height) throw new Error(`source is ${bound.width}×${bound.height}, its layout is for ${j.layout.width}×${j.layout.height}`);
          let pipeline = this.texturePipeline;
          if (bound.external) {
            try {
              pipeline = await this.external();
            } catch (e) {
              // Next time, copy the frame instead of importing it.
              this.binder.markFailed('external-texture');
              throw e;
            }
          }
          const params = d.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
          scratch.push(params);
          d.queue.writeBuffer(params, 0, Uint32Array.of(first, geometry.cropSize, geometry.patchSize, 0));
          const group = d.createBindGroup({
            layout: pipeline.getBindGroupLayout(0),
            entries: [
              { binding: 0, resource: bound.resource },
              { binding: 1, resource: { buffer: j.taps } },
              { binding: 2, resource: { buffer: j.crops } },
              { binding: 3, resource: { buffer: lut } },
              { binding: 4, resource: { buffer: out } },
              { binding: 5, resource: { buffer: params } },
            ],
          });
          const enc = d.createCommandEncoder({ label: 'molmo2 preprocess' });
          const pass = enc.beginComputePass();
          pass.setPipeline(pipeline);
          pass.setBindGroup(0, group);
          const groups = Math.ceil(geometry.cropSize / WORKGROUP);
          pass.dispatchWorkgroups(groups, groups, j.layout.numCrops);
          pass.end();
          // One submit per source: the next source may reuse the same texture, and queue order protects it.
          d.queue.submit([enc.finish()]);
          methods.push(bound.method);
        } finally {
          bound.release();
        }
        first += j.layout.numCrops;
      }
    } catch (e) {
      out.destroy();
      throw e;
    } finally {
      for (const b of scratch) b.destroy();
    }
    return { buffer: out, numCrops, dims, methods };
  }

  private layoutFor(key: string, make: () => SourceLayout) {
    let e = this.layouts.get(key);
    if (!e) {
      const layout = make();
      if (this.layouts.size >= 32) this.dropLayouts();
      e = { layout, taps: this.upload(layout.taps, 'taps'), crops: this.upload(layout.crops, 'crops') };
      this.layouts.set(key, e);
    }
    return e;
  }

  private lutFor(settings: ProcessorSettings): GPUBuffer {
    const key = `${settings.imageMean} ${settings.imageStd}`;
    let b = this.luts.get(key);
    if (!b) {
      b = this.upload(normalisationLut(settings), 'normalisation');
      this.luts.set(key, b);
    }
    return b;
  }

  private upload(data: ArrayBuffer | ArrayBufferView, label: string): GPUBuffer {
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const b = this.device.createBuffer({ label, size: Math.max(16, Math.ceil(bytes.byteLength / 4) * 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    this.device.queue.writeBuffer(b, 0, bytes as Uint8Array<ArrayBuffer>);
    return b;
  }

  private external(): Promise<GPUComputePipeline> {
    this.externalPipeline ??= compile(this.device, TEXTURE_EXTERNAL);
    return this.externalPipeline;
  }

  private dropLayouts(): void {
    for (const e of this.layouts.values()) {
      e.taps.destroy();
      e.crops.destroy();
    }
    this.layouts.clear();
  }

  /** Copies a result back to the CPU (tests, benchmarks); the buffer stays usable. */
  async read(px: GpuPixels): Promise<Float32Array> {
    const size = px.buffer.size;
    const staging = this.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    try {
      const enc = this.device.createCommandEncoder();
      enc.copyBufferToBuffer(px.buffer, 0, staging, 0, size);
      this.device.queue.submit([enc.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      return new Float32Array(staging.getMappedRange().slice(0, px.dims[0] * px.dims[1] * px.dims[2] * 4));
    } finally {
      staging.destroy();
    }
  }

  dispose(): void {
    this.dropLayouts();
    for (const b of this.luts.values()) b.destroy();
    this.luts.clear();
    this.binder.dispose();
  }
}

async function compile(device: GPUDevice, prelude: string): Promise<GPUComputePipeline> {
  // A scope keeps a compile error ours (onnxruntime would log it as its own device error).
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ label: 'molmo2 preprocess', code: prelude + shaderBody });
  const info = await module.getCompilationInfo();
  await device.popErrorScope();
  const errors = info.messages.filter((m) => m.type === 'error');
  if (errors.length) throw new Error(`the preprocessing shader does not compile here: ${errors.map((m) => m.message).join('; ')}`);
  return device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
}
