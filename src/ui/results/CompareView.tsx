// Two runs compared: the user picks run A and run B, both are drawn on the video (the store shows
// them alone while comparing), their summaries sit side by side (what was asked, of which frames,
// with which model, what was found, the raw answers), and the differences are listed object by
// object (compare-diff.ts), so re-runs and rephrasings can be judged.
import { useMemo } from 'react';
import { formatTime } from '../../molmo2/video.ts';
import { useResultsStore } from '../../state/results-store.ts';
import type { Run } from '../../state/results-types.ts';
import { runCount } from '../../overlay/overlay-model.ts';
import { runIdentities } from './run-identity.ts';
import { useVisibleTracks } from './use-tracks.ts';
import { defaultMaxMeanPx, diffRuns, type DiffPlace, type DiffTrack, type TrackPair } from './compare-diff.ts';

export function CompareView() {
  const compare = useResultsStore((s) => s.compare);
  const runs = useResultsStore((s) => s.runs);
  const a = runs.find((r) => r.id === compare?.[0]);
  const b = runs.find((r) => r.id === compare?.[1]);
  if (!a || !b) return null;
  const names = runIdentities(runs);
  // Picking the run on the other side swaps the two, so A and B always differ.
  const pick = (side: 0 | 1, id: string) => {
    const pair: [string, string] = [a.id, b.id];
    if (pair[1 - side] === id) pair[1 - side] = pair[side];
    pair[side] = id;
    useResultsStore.getState().setCompare(pair);
  };
  return (
    <section className="compare" aria-label="Compare two runs" data-testid="compare">
      <div className="compare-head">
        <h2>Compare</h2>
        <button type="button" onClick={() => useResultsStore.getState().setCompare(null)}>
          Close
        </button>
      </div>
      <div className="compare-pickers">
        {([a, b] as const).map((run, side) => (
          <div key={side}>
            <label htmlFor={`compare-run-${side}`}>Run {side === 0 ? 'A' : 'B'}</label>
            <select id={`compare-run-${side}`} value={run.id} onChange={(e) => pick(side === 0 ? 0 : 1, e.target.value)}>
              {runs.map((r) => (
                <option key={r.id} value={r.id}>
                  {names.get(r.id)?.name} — {r.question}
                </option>
              ))}
            </select>
          </div>
        ))}
      </div>
      <div className="compare-grid">
        {[a, b].map((run) => (
          <RunSummary key={run.id} run={run} name={names.get(run.id)?.name ?? ''} />
        ))}
      </div>
      <Differences a={a} b={b} tagA={names.get(a.id)?.tag ?? 'A'} tagB={names.get(b.id)?.tag ?? 'B'} />
    </section>
  );
}

function RunSummary({ run, name }: { run: Run; name: string }) {
  const r = run.result;
  const byTrack = new Map<number, number>();
  for (const p of r.points) byTrack.set(p.trackId, (byTrack.get(p.trackId) ?? 0) + 1);
  return (
    <article className="compare-run" data-testid="compare-run">
      <h3>
        <span className="run-name">{name}</span> {run.question}
      </h3>
      <dl>
        <dt>asked</dt>
        <dd>{new Date(run.createdAt).toLocaleString()}</dd>
        <dt>about</dt>
        <dd>{run.scope.label}</dd>
        <dt>model</dt>
        <dd>
          {r.model.id} · {r.model.dtype}
        </dd>
        <dt>found</dt>
        <dd data-testid="compare-count">
          {runCount(r)} object(s), {r.points.length} point(s){r.count !== null ? `, stated count ${r.count}` : ''}
        </dd>
        <dt>objects</dt>
        <dd>{[...byTrack].map(([id, n]) => `#${id}: ${n}`).join(', ') || 'none'}</dd>
        {r.timingMs.decodeMs !== undefined && (
          <>
            <dt>time</dt>
            <dd>{formatTime(((r.timingMs.visionMs ?? 0) + (r.timingMs.prefillMs ?? 0) + r.timingMs.decodeMs) / 1000)}</dd>
          </>
        )}
      </dl>
      <pre className="compare-raw">{r.rawText}</pre>
    </article>
  );
}

const px = (v: number | null) => (v === null ? '–' : `${v.toFixed(1)} px`);
const placeText = (p: DiffPlace) => (p.frame >= 0 ? `frame ${p.frame + 1}` : formatTime(p.timeS));
const placesText = (places: DiffPlace[]) => (places.length > 6 ? `${places.slice(0, 6).map(placeText).join(', ')} and ${places.length - 6} more` : places.map(placeText).join(', '));

function Differences({ a, b, tagA, tagB }: { a: Run; b: Run; tagA: string; tagB: string }) {
  const { width, height } = a.result.video;
  const diff = useMemo(() => diffRuns(a.result.points, b.result.points, { maxMeanPx: defaultMaxMeanPx(width, height) }), [a.result.points, b.result.points, width, height]);
  // Swatches in the drawn colours, so each line can be found on the video.
  const drawn = useVisibleTracks();
  const color = (run: Run, t: DiffTrack) => drawn.find((d) => d.runId === run.id && d.id === t.trackId)?.color;
  const track = (run: Run, tag: string, t: DiffTrack) => (
    <span className="compare-track">
      <span className="swatch" style={{ background: color(run, t) }} aria-hidden="true" />
      {tag} #{t.trackId}
      {t.label ? ` ${t.label}` : ''}
    </span>
  );
  const pairText = (p: TrackPair) => {
    const parts = [
      p.shared === 0 ? 'no frame in common (paired by id and label)' : `${p.shared} shared frame${p.shared === 1 ? '' : 's'}, mean ${px(p.meanPx)}, max ${px(p.maxPx)}${p.maxAt && p.shared > 1 ? ` at ${placeText(p.maxAt)}` : ''}`,
    ];
    if (p.onlyA.length) parts.push(`only in ${tagA}: ${placesText(p.onlyA)}`);
    if (p.onlyB.length) parts.push(`only in ${tagB}: ${placesText(p.onlyB)}`);
    return parts.join('; ');
  };
  const total = diff.pairs.length + diff.onlyA.length + diff.onlyB.length;
  return (
    <section className="compare-diffs" aria-labelledby="compare-diffs-title">
      <h3 id="compare-diffs-title">Differences by object</h3>
      <p className="results-muted">Objects are paired by their positions on the frames both runs have points on (ids differ between answers); distances are in video pixels.</p>
      {total === 0 ? (
        <p data-testid="compare-no-objects">Neither run found an object.</p>
      ) : (
        <ul data-testid="compare-diff-list">
          {diff.pairs.map((p) => (
            <li key={`p${p.a.trackId}`} data-testid="compare-diff">
              {track(a, tagA, p.a)} ↔ {track(b, tagB, p.b)}: {pairText(p)}
            </li>
          ))}
          {diff.onlyA.map((t) => (
            <li key={`a${t.trackId}`} data-testid="compare-diff">
              {track(a, tagA, t)}: only in {tagA} ({t.points} point{t.points === 1 ? '' : 's'})
            </li>
          ))}
          {diff.onlyB.map((t) => (
            <li key={`b${t.trackId}`} data-testid="compare-diff">
              {track(b, tagB, t)}: only in {tagB} ({t.points} point{t.points === 1 ? '' : 's'})
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
