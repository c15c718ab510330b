// Resident memory of the Chromium processes this Node process started (Linux /proc), by process type:
// the renderer holds the page and its workers (JS heaps, onnxruntime's wasm memory, Blobs read into
// memory); the GPU process holds the GPU buffers (with SwiftShader, in system memory).
import { readdirSync, readFileSync } from 'node:fs';

export type ChromiumProcessKind = 'browser' | 'renderer' | 'gpu' | 'other';

const PAGE = 4096;

function readOr(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined; // the process ended between the listing and the read
  }
}

/** Every descendant of `root` with its parent, from /proc/<pid>/stat. */
function descendants(root: number): number[] {
  const parentOf = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readOr(`/proc/${name}/stat`);
    // The command name (2nd field) is in parentheses and may hold spaces: read after its ')'.
    const rest = stat?.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest) parentOf.set(Number(name), Number(rest[1]));
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    for (const [child, parent] of parentOf) if (parent === pid) (out.push(child), walk(child));
  };
  walk(root);
  return out;
}

function kindOf(cmdline: string): ChromiumProcessKind | undefined {
  if (!/chrom/i.test(cmdline.split('\0')[0] ?? '')) return undefined;
  const type = /--type=([\w-]+)/.exec(cmdline)?.[1];
  if (!type) return 'browser';
  // The headless shell's own WebUI renderer is not the page's.
  if (type === 'renderer') return cmdline.includes('--top-chrome-webui') ? 'other' : 'renderer';
  return type === 'gpu-process' ? 'gpu' : 'other';
}

/** Bytes resident now, summed per kind, over Chromium processes descended from this process. */
export function chromiumRss(root = process.pid): Record<ChromiumProcessKind, number> {
  const sums: Record<ChromiumProcessKind, number> = { browser: 0, renderer: 0, gpu: 0, other: 0 };
  for (const pid of descendants(root)) {
    const cmdline = readOr(`/proc/${pid}/cmdline`);
    const kind = cmdline && kindOf(cmdline);
    const statm = kind ? readOr(`/proc/${pid}/statm`) : undefined;
    if (kind && statm) sums[kind] += Number(statm.split(' ')[1]) * PAGE;
  }
  return sums;
}

export interface RssSample extends Record<ChromiumProcessKind, number> {
  /** Date.now() when taken. */
  at: number;
}

/** Samples chromiumRss every `ms` until stop(), which returns the samples. */
export function sampleChromiumRss(ms = 200): { stop(): RssSample[] } {
  const samples: RssSample[] = [{ at: Date.now(), ...chromiumRss() }];
  const timer = setInterval(() => samples.push({ at: Date.now(), ...chromiumRss() }), ms);
  return {
    stop() {
      clearInterval(timer);
      samples.push({ at: Date.now(), ...chromiumRss() });
      return samples;
    },
  };
}

/** Each kind's peak over the samples taken in [from, to]. */
export function peakRss(samples: RssSample[], from = -Infinity, to = Infinity): Record<ChromiumProcessKind, number> {
  const peak: Record<ChromiumProcessKind, number> = { browser: 0, renderer: 0, gpu: 0, other: 0 };
  for (const s of samples) {
    if (s.at < from || s.at > to) continue;
    for (const k of Object.keys(peak) as ChromiumProcessKind[]) peak[k] = Math.max(peak[k], s[k]);
  }
  return peak;
}
