import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Sha256, sha256OfBlob } from './sha256.ts';

const reference = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('Sha256', () => {
  it('gives the FIPS 180-4 test vectors', () => {
    const text = (s: string) => new Sha256().update(new TextEncoder().encode(s)).hex();
    expect(text('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(text('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(text('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')).toBe('248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  });

  it('equals node:crypto for every length around the block and padding edges, fed in any chunks', () => {
    const data = randomBytes(4096);
    let checked = 0;
    for (let n = 0; n <= 200; n++) {
      const bytes = data.subarray(0, n);
      expect(new Sha256().update(bytes).hex()).toBe(reference(bytes));
      // The same bytes split at two places.
      const a = Math.floor(n / 3);
      const b = Math.floor((2 * n) / 3);
      expect(new Sha256().update(bytes.subarray(0, a)).update(bytes.subarray(a, b)).update(bytes.subarray(b)).hex()).toBe(reference(bytes));
      checked++;
    }
    // Random chunkings of a longer message (fixed sizes, so a failure repeats).
    const sizes = [1, 7, 63, 64, 65, 127, 500, 1000];
    let at = 0;
    const h = new Sha256();
    for (let k = 0; at < data.length; k++) {
      const end = Math.min(data.length, at + sizes[k % sizes.length]);
      h.update(data.subarray(at, end));
      at = end;
    }
    expect(h.hex()).toBe(reference(data));
    expect(checked).toBe(201);
  });

  it('hashes a Blob as a stream', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    expect(await sha256OfBlob(new Blob([bytes]))).toBe(reference(bytes));
  });
});
