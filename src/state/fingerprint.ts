// A file's fingerprint: SHA-256 over its size and its first and last MiB. Cheap for a 2 GB file (reads
// 2 MiB), stable across renames, and different for re-encoded or edited files, so a video's history
// follows its content.
const EDGE = 1 << 20;

export async function fileFingerprint(file: Blob): Promise<string> {
  const size = new TextEncoder().encode(`${file.size}:`);
  const head = new Uint8Array(await file.slice(0, Math.min(EDGE, file.size)).arrayBuffer());
  const tail = file.size > EDGE ? new Uint8Array(await file.slice(Math.max(EDGE, file.size - EDGE)).arrayBuffer()) : new Uint8Array(0);
  const all = new Uint8Array(size.length + head.length + tail.length);
  all.set(size, 0);
  all.set(head, size.length);
  all.set(tail, size.length + head.length);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', all));
  return Array.from(digest.subarray(0, 16), (b) => b.toString(16).padStart(2, '0')).join('');
}
