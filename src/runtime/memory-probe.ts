// How much more GPU memory the device can allocate now, measured: WebGPU says nothing about a GPU's
// memory size, so buffers are created inside out-of-memory error scopes until one fails or enough is
// had, then destroyed. Run after the weights are on the GPU, it measures what is left for the KV
// cache. Dawn allocates a buffer's memory when it is created (zeroing it on first use), so untouched
// buffers count; a driver that pages GPU memory out to system memory can overstate it.

/** Bytes allocatable on `device` now, up to `want`, in buffers of at most `chunk` bytes labelled `label`. */
export async function probeFreeBytes(device: GPUDevice, want: number, chunk = 256 * 2 ** 20, label = 'molmo2 memory probe'): Promise<number> {
  const size = Math.max(4, Math.min(chunk, device.limits.maxBufferSize) & ~3);
  const made: GPUBuffer[] = [];
  let got = 0;
  try {
    while (got < want) {
      device.pushErrorScope('out-of-memory');
      device.pushErrorScope('validation');
      const buffer = device.createBuffer({ size, usage: GPUBufferUsage.STORAGE, label });
      const invalid = await device.popErrorScope();
      const oom = await device.popErrorScope();
      if (oom || invalid) {
        buffer.destroy();
        break;
      }
      made.push(buffer);
      got += size;
    }
  } finally {
    for (const b of made) b.destroy();
  }
  return Math.min(got, want);
}
