// The safetensors format: 8-byte little-endian header length, a JSON header, then raw tensor bytes.
// Platform-free: works on byte arrays; file access lives in the callers.
import { float16Value } from './fp16.ts';

export type SafeDtype = 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'U8' | 'I8' | 'BOOL' | 'F64';

export interface TensorInfo {
  dtype: SafeDtype;
  shape: number[];
  /** Byte offsets relative to the start of the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Size of the 8-byte length prefix plus the JSON header: data offsets are relative to this. */
  dataStart: number;
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
}

export const DTYPE_BYTES: Record<SafeDtype, number> = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1, I8: 1, BOOL: 1, F64: 8 };

/** Length of the JSON header, read from the first 8 bytes. */
export function headerLength(first8: Uint8Array): number {
  if (first8.byteLength < 8) throw new Error('safetensors: file shorter than its 8-byte header length');
  const dv = new DataView(first8.buffer, first8.byteOffset, 8);
  const n = Number(dv.getBigUint64(0, true));
  if (n <= 0 || n > 100_000_000) throw new Error(`safetensors: implausible header length ${n}`);
  return n;
}

/** Parses the header from the file's leading bytes (at least 8 + headerLength of them). */
export function parseHeader(bytes: Uint8Array, fileSize?: number): SafetensorsHeader {
  const n = headerLength(bytes);
  if (bytes.byteLength < 8 + n) throw new Error('safetensors: header truncated');
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch {
    throw new Error('safetensors: header is not valid JSON');
  }
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(json)) {
    if (name === '__metadata__') {
      metadata = v as Record<string, string>;
      continue;
    }
    const e = v as { dtype: SafeDtype; shape: number[]; data_offsets: [number, number] };
    if (!(e.dtype in DTYPE_BYTES)) throw new Error(`safetensors: tensor ${name} has unsupported dtype ${e.dtype}`);
    const count = e.shape.reduce((a, b) => a * b, 1);
    const [begin, end] = e.data_offsets;
    if (end - begin !== count * DTYPE_BYTES[e.dtype]) throw new Error(`safetensors: tensor ${name} byte range does not match its shape`);
    if (fileSize !== undefined && 8 + n + end > fileSize) throw new Error(`safetensors: tensor ${name} lies past the end of the file (truncated?)`);
    tensors.set(name, { dtype: e.dtype, shape: e.shape, begin, end });
  }
  return { dataStart: 8 + n, tensors, metadata };
}

/** Converts raw little-endian tensor bytes of a float dtype to float32. */
export function toFloat32(bytes: Uint8Array, dtype: SafeDtype): Float32Array {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  switch (dtype) {
    case 'F32':
      return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4).slice();
    case 'F16': {
      const u16 = new Uint16Array(bytes.slice().buffer);
      const out = new Float32Array(u16.length);
      for (let i = 0; i < u16.length; i++) out[i] = float16Value(u16[i]);
      return out;
    }
    case 'BF16': {
      const u16 = new Uint16Array(bytes.slice().buffer);
      const u32 = new Uint32Array(u16.length);
      for (let i = 0; i < u16.length; i++) u32[i] = u16[i] << 16;
      return new Float32Array(u32.buffer);
    }
    default:
      throw new Error(`safetensors: cannot read ${dtype} as float32`);
  }
}

/** Serialises tensors into one safetensors file (used by the tiny-checkpoint maker and tests). */
export function writeSafetensors(tensors: { name: string; dtype: SafeDtype; shape: number[]; data: Uint8Array }[], metadata: Record<string, string> = { format: 'pt' }): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data section starts 8-byte aligned, as the reference writer does.
  while ((8 + json.length) % 8 !== 0) json += ' ';
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.byteLength), true);
  out.set(head, 8);
  let pos = 8 + head.byteLength;
  for (const t of tensors) {
    out.set(t.data, pos);
    pos += t.data.byteLength;
  }
  return out;
}
