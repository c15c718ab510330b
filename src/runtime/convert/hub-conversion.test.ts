import { describe, expect, it } from 'vitest';
import { storageShortfall } from './hub-conversion.ts';

describe('storageShortfall', () => {
  const GB = 1e9;
  it('refuses a conversion that needs more than the free storage, with both numbers', () => {
    const m = storageShortfall({ repo: 'allenai/Molmo2-4B', writeBytes: 3.3 * GB, resumableBytes: 0, freeBytes: 2 * GB });
    expect(m).toContain('allenai/Molmo2-4B needs about 3.30 GB more browser storage, but only 2.00 GB is free');
  });
  it('counts what an interrupted run already wrote', () => {
    expect(storageShortfall({ repo: 'a/b', writeBytes: 3.3 * GB, resumableBytes: 1.5 * GB, freeBytes: 2 * GB })).toBeUndefined();
    expect(storageShortfall({ repo: 'a/b', writeBytes: 3.3 * GB, resumableBytes: 1 * GB, freeBytes: 2 * GB })).toContain('needs about 2.30 GB more');
  });
  it('lets the conversion start when the browser does not say how much is free', () => {
    expect(storageShortfall({ repo: 'a/b', writeBytes: 3.3 * GB, resumableBytes: 0, freeBytes: undefined })).toBeUndefined();
  });
});
