// Getting a source image onto the GPU for the preprocessing shader, cheapest way first:
// VideoFrame → importExternalTexture (zero copy) → copyExternalImageToTexture(frame) → createImageBitmap;
// ImageBitmap → copyExternalImageToTexture; RGBA bytes → writeTexture. A way that fails once (e.g. on
// SwiftShader, where the two VideoFrame ways do) is not tried again on this preprocessor.
import type { ImageInput, RgbaImage } from './api-types.ts';

export type GpuImageSource = ImageInput | VideoFrame;
export type SourceMethod = 'external-texture' | 'copy-video-frame' | 'copy-bitmap' | 'write-texture';

export interface BoundSource {
  width: number;
  height: number;
  method: SourceMethod;
  /** Bind-group resource for binding 0: a texture view, or an external texture. */
  resource: GPUTextureView | GPUExternalTexture;
  external: boolean;
  /** Frees what this binding created for itself (a bitmap made from a VideoFrame). */
  release(): void;
}

export function isVideoFrame(x: unknown): x is VideoFrame {
  return typeof VideoFrame !== 'undefined' && x instanceof VideoFrame;
}

function isBitmap(x: unknown): x is ImageBitmap {
  return typeof ImageBitmap !== 'undefined' && x instanceof ImageBitmap;
}

export function sourceSize(src: GpuImageSource): { width: number; height: number } {
  if (isVideoFrame(src)) return { width: src.displayWidth, height: src.displayHeight };
  return { width: src.width, height: src.height };
}

/** Throws when `fn` raises a WebGPU validation error (which would otherwise only be logged). */
async function checked<T>(device: GPUDevice, fn: () => T): Promise<T> {
  device.pushErrorScope('validation');
  let value: T;
  try {
    value = fn();
  } finally {
    const err = await device.popErrorScope();
    if (err) throw new Error(err.message);
  }
  return value;
}

export class SourceBinder {
  private textures = new Map<string, GPUTexture>();
  private failed = new Set<SourceMethod>();
  constructor(private device: GPUDevice) {}

  /** An rgba8unorm texture of this size, reused: queue order keeps one use before the next copy. */
  private texture(width: number, height: number): GPUTexture {
    const key = `${width}x${height}`;
    let t = this.textures.get(key);
    if (!t) {
      if (this.textures.size >= 8) this.dispose();
      t = this.device.createTexture({
        size: [width, height],
        format: 'rgba8unorm',
        usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST | GPUTextureUsage.RENDER_ATTACHMENT,
      });
      this.textures.set(key, t);
    }
    return t;
  }

  private async copyExternal(source: ImageBitmap | VideoFrame, width: number, height: number, method: SourceMethod): Promise<BoundSource> {
    const t = this.texture(width, height);
    // Unpremultiplied sRGB bytes, what the CPU path reads from a 2D canvas.
    await checked(this.device, () => this.device.queue.copyExternalImageToTexture({ source }, { texture: t, premultipliedAlpha: false }, [width, height]));
    return { width, height, method, resource: t.createView(), external: false, release() {} };
  }

  private writeRgba(img: RgbaImage): BoundSource {
    const { width, height } = img;
    if (img.data.length !== width * height * 4) throw new Error(`an image of ${width}×${height} needs ${width * height * 4} RGBA bytes, got ${img.data.length}`);
    const t = this.texture(width, height);
    this.device.queue.writeTexture({ texture: t }, img.data as Uint8Array<ArrayBuffer>, { bytesPerRow: width * 4, rowsPerImage: height }, [width, height]);
    return { width, height, method: 'write-texture', resource: t.createView(), external: false, release() {} };
  }

  private async attempt(method: SourceMethod, fn: () => Promise<BoundSource>): Promise<BoundSource | undefined> {
    if (this.failed.has(method)) return undefined;
    try {
      return await fn();
    } catch {
      this.failed.add(method);
      return undefined;
    }
  }

  async bind(src: GpuImageSource): Promise<BoundSource> {
    const { width, height } = sourceSize(src);
    if (!(width > 0 && height > 0)) throw new Error('an image is empty (0 pixels); was it already closed?');
    const max = this.device.limits.maxTextureDimension2D;
    if (width > max || height > max) throw new Error(`an image of ${width}×${height} exceeds this GPU's ${max}-pixel texture limit`);
    if (isVideoFrame(src)) {
      // A rotated frame would need the rotation applied; leave those to the bitmap path.
      const rotated = Boolean((src as VideoFrame & { rotation?: number }).rotation);
      const ext = rotated
        ? undefined
        : await this.attempt('external-texture', async () => {
            const resource = await checked(this.device, () => this.device.importExternalTexture({ source: src }));
            return { width, height, method: 'external-texture' as const, resource, external: true, release() {} };
          });
      if (ext) return ext;
      const copied = rotated ? undefined : await this.attempt('copy-video-frame', () => this.copyExternal(src, width, height, 'copy-video-frame'));
      if (copied) return copied;
      const bitmap = await createImageBitmap(src);
      try {
        const b = await this.copyExternal(bitmap, bitmap.width, bitmap.height, 'copy-bitmap');
        return { ...b, release: () => bitmap.close() };
      } catch (e) {
        bitmap.close();
        throw e;
      }
    }
    if (isBitmap(src)) return this.copyExternal(src, width, height, 'copy-bitmap');
    return this.writeRgba(src);
  }

  /** Stops using a way that worked here but cannot be used further (e.g. its shader failed). */
  markFailed(method: SourceMethod): void {
    this.failed.add(method);
  }

  dispose(): void {
    for (const t of this.textures.values()) t.destroy();
    this.textures.clear();
  }
}
