// Access to a checkpoint's tensors, one at a time. Platform-free: the converter implements it over
// safetensors files on disk; tests may implement it over memory.
import type { SafeDtype } from './safetensors.ts';

export interface WeightReader {
  /** Every tensor name the checkpoint holds. */
  names(): string[];
  has(name: string): boolean;
  /** Shape as stored; throws for an unknown name. */
  shape(name: string): number[];
  /** Storage dtype; read() converts F32, F16 and BF16 to float32. */
  dtype(name: string): SafeDtype;
  /** Reads one tensor (only its own bytes) as float32, row-major. */
  read(name: string): Promise<Float32Array>;
  /** Reads rows [from, to) of a tensor (viewed as [shape[0], rest]) as float32: a large tensor in blocks. */
  readRows?(name: string, from: number, to: number): Promise<Float32Array>;
}
