// Two runs side by side: what was asked, of which frames, with which model, what was found, and the
// raw answers, so re-runs and rephrasings can be judged.
import { formatTime } from '../../molmo2/video.ts';
import { useResultsStore } from '../../state/results-store.ts';
import type { Run } from '../../state/results-types.ts';
import { runCount } from '../../overlay/overlay-model.ts';

export function CompareView() {
  const compare = useResultsStore((s) => s.compare);
  const runs = useResultsStore((s) => s.runs);
  const pair = compare?.map((id) => runs.find((r) => r.id === id)).filter((r): r is Run => r !== undefined);
  if (!pair || pair.length !== 2) return null;
  return (
    <section className="compare" aria-label="Compare two runs" data-testid="compare">
      <div className="compare-head">
        <h2>Compare</h2>
        <button type="button" onClick={() => useResultsStore.getState().setCompare(null)}>
          Close
        </button>
      </div>
      <div className="compare-grid">
        {pair.map((run) => (
          <RunSummary key={run.id} run={run} />
        ))}
      </div>
    </section>
  );
}

function RunSummary({ run }: { run: Run }) {
  const r = run.result;
  const byTrack = new Map<number, number>();
  for (const p of r.points) byTrack.set(p.trackId, (byTrack.get(p.trackId) ?? 0) + 1);
  return (
    <article className="compare-run" data-testid="compare-run">
      <h3>{run.question}</h3>
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
