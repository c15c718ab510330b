// Watches the loaded model's GPU device. A loss settles the answer in flight (answer.ts races it) and
// is sticky: onnxruntime's wasm state does not survive it (a new session then fails with "memory
// access out of bounds"), so only a fresh worker can load again. onnxruntime destroys its device itself
// once every session is released (an unload): that loss concerns no loaded model and is ignored.
import { deviceLoss, GpuLostError, gpuLostMessage } from './gpu-faults.ts';

export class DeviceLossWatch {
  private lostReason?: string;
  private readonly watched = new WeakSet<GPUDevice>();
  private readonly listeners = new Set<(reason: string) => void>();

  /** `isCurrent(device)`: whether the device still carries the loaded model. */
  constructor(private readonly isCurrent: (device: GPUDevice) => boolean) {}

  /** Why the model's device was lost, if it was. */
  get reason(): string | undefined {
    return this.lostReason;
  }

  watch(device: GPUDevice): void {
    if (this.watched.has(device)) return;
    this.watched.add(device);
    void deviceLoss(device).then((reason) => {
      if (!this.isCurrent(device)) return;
      this.lostReason = reason;
      this.listeners.forEach((fn) => fn(reason));
    });
  }

  /** Rejects with GpuLostError once the device is lost (at once if it already is); `stop` detaches. */
  race(): { promise: Promise<never>; stop: () => void } {
    let fail!: (reason: string) => void;
    const promise = new Promise<never>((_, reject) => {
      fail = (reason) => reject(new GpuLostError(gpuLostMessage(reason)));
    });
    promise.catch(() => {});
    if (this.lostReason) fail(this.lostReason);
    this.listeners.add(fail);
    return { promise, stop: () => this.listeners.delete(fail) };
  }

  /** A run failing on a destroyed device may settle before `device.lost` does: give the loss a moment. */
  async settle(device: GPUDevice, ms = 300): Promise<void> {
    if (this.lostReason) return;
    await Promise.race([device.lost, new Promise((r) => setTimeout(r, ms))]);
  }

  /** The refusal of a worker whose device was lost. */
  refusal(): GpuLostError | undefined {
    if (!this.lostReason) return undefined;
    return new GpuLostError(`${gpuLostMessage(this.lostReason)} This worker cannot use the GPU again; start a new one (the app does so itself).`);
  }
}
