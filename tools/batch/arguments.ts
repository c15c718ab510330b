// The batch tool's command-line values: times, ranges, counts and export lists, each refused with a
// message that says what was expected.
import { EXPORT_KINDS, type ExportKind } from './run-batch.ts';

/** A command line that cannot be used (the message says why); the tool prints its usage after it. */
export class UsageError extends Error {}

/** "12.5", "1:05" or "1:02:03.5" → seconds. */
export function parseTime(text: string): number {
  const parts = text.trim().split(':');
  if (parts.length > 3 || parts.some((p) => !/^\d+(\.\d+)?$/.test(p))) throw new UsageError(`“${text}” is not a time (use seconds, m:ss or h:mm:ss)`);
  return parts.reduce((s, p) => s * 60 + Number(p), 0);
}

export function parseRange(text: string): [number, number] {
  const m = /^\s*([^-\s]+)\s*-\s*([^-\s]+)\s*$/.exec(text);
  if (!m) throw new UsageError(`--range takes A-B, e.g. 5-20 or 0:05-0:20; got “${text}”`);
  const [a, b] = [parseTime(m[1]), parseTime(m[2])];
  if (!(b > a)) throw new UsageError(`--range ${text}: the end must be after the start`);
  return [a, b];
}

export function positiveInt(name: string, text: string | undefined, fallback: number, max = Infinity): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new UsageError(`--${name} takes a whole number from 1${max < Infinity ? ` to ${max}` : ''}; got “${text}”`);
  return n;
}

export function parseExports(text: string | undefined): ExportKind[] {
  if (!text) return [];
  const asked = text.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  if (asked.includes('all')) return [...EXPORT_KINDS];
  const unknown = asked.filter((k) => !EXPORT_KINDS.includes(k as ExportKind));
  if (unknown.length) throw new UsageError(`--export: unknown format ${unknown.join(', ')} (choose from ${EXPORT_KINDS.join(', ')}, or all)`);
  return asked as ExportKind[];
}
