// Streams a safetensors file to disk tensor by tensor: the header is computed from the shapes up
// front, then each tensor's bytes are produced in chunks and appended, so a multi-GB shard never
// sits in memory.
import { open } from 'node:fs/promises';
import { DTYPE_BYTES, type SafeDtype } from '../../src/molmo2/safetensors.ts';

export interface TensorPlan {
  name: string;
  dtype: SafeDtype;
  shape: number[];
}

/** Produces a tensor's bytes in order; called once per tensor, yields chunks of any size. */
export type ChunkSource = (tensor: TensorPlan) => Iterable<Uint8Array>;

export function byteLength(t: TensorPlan): number {
  return t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
}

/** The 8-byte length prefix plus the JSON header, padded so the data section starts 8-byte aligned. */
export function safetensorsHeader(tensors: TensorPlan[], metadata: Record<string, string> = { format: 'pt' }): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const n = byteLength(t);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += ' ';
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.byteLength), true);
  out.set(head, 8);
  return out;
}

/** Writes one safetensors file; returns its size in bytes. */
export async function writeSafetensorsStreaming(path: string, tensors: TensorPlan[], source: ChunkSource): Promise<number> {
  const file = await open(path, 'w');
  try {
    const head = safetensorsHeader(tensors);
    await file.write(head);
    let size = head.byteLength;
    for (const t of tensors) {
      const expected = byteLength(t);
      let written = 0;
      for (const chunk of source(t)) {
        await file.write(chunk);
        written += chunk.byteLength;
      }
      if (written !== expected) throw new Error(`tensor ${t.name}: produced ${written} bytes, expected ${expected}`);
      size += written;
    }
    return size;
  } finally {
    await file.close();
  }
}
