import { describe, expect, it } from 'vitest';
import { fileFingerprint } from './fingerprint.ts';

describe('fileFingerprint', () => {
  const bytes = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);

  it('depends on content and size, not on the name', async () => {
    const a = await fileFingerprint(new File([bytes(3000)], 'a.mp4'));
    expect(a).toMatch(/^[0-9a-f]{32}$/);
    expect(await fileFingerprint(new File([bytes(3000)], 'renamed.mp4'))).toBe(a);
    expect(await fileFingerprint(new File([bytes(3000, 2)], 'a.mp4'))).not.toBe(a);
    expect(await fileFingerprint(new File([bytes(3001)], 'a.mp4'))).not.toBe(a);
  });

  it('reads the head and the tail of a large file, so a change at the end shows', async () => {
    const big = bytes(3 << 20);
    const edited = big.slice();
    edited[edited.length - 10] ^= 1;
    expect(await fileFingerprint(new Blob([edited]))).not.toBe(await fileFingerprint(new Blob([big])));
  });
});
