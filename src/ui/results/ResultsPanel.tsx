// The results list: every question asked about this video (its history), each with show/hide,
// select (for the one export bar), re-run, compare and delete, and for shown runs their tracks and
// points as a keyboard- and screen-reader-friendly mirror of the overlay (selecting a point seeks to
// its frame).
import { useRef, useState } from 'react';
import { formatTime } from '../../molmo2/video.ts';
import { activeRun, useResultsStore } from '../../state/results-store.ts';
import type { Run } from '../../state/results-types.ts';
import { useVideoStore } from '../../state/video-store.ts';
import { askQuestion } from '../ask/ask-run.ts';
import { useAskStore } from '../../state/ask-store.ts';
import { useModelStore } from '../../state/model-store.ts';
import { useServerStore } from '../../state/server-store.ts';
import { ExportBar } from './ExportBar.tsx';
import { EditBar } from './EditBar.tsx';
import { useEditStore } from '../../state/edit-store.ts';
import { runFromResultFile } from './import-run.ts';
import { markersAt, runCount } from '../../overlay/overlay-model.ts';
import { useVisibleTracks } from './use-tracks.ts';
import { runIdentities } from './run-identity.ts';
import { defaultPartner } from './compare-pair.ts';
import './results.css';

export function ResultsPanel() {
  const info = useVideoStore((s) => s.info);
  const runs = useResultsStore((s) => s.runs);
  const announcement = useResultsStore((s) => s.announcement);
  const storageError = useResultsStore((s) => s.storageError);
  const overlay = useResultsStore((s) => s.overlay);
  const active = useResultsStore(activeRun);
  const [importError, setImportError] = useState<string | null>(null);
  if (!info) return null;

  const importFile = async (file: File | undefined) => {
    setImportError(null);
    const fingerprint = useResultsStore.getState().fingerprint;
    if (!file || !fingerprint) return;
    const out = runFromResultFile(await file.text(), file.name, info, fingerprint);
    if (!out.ok) return setImportError(out.message);
    useResultsStore.getState().addRun(out.run);
    useResultsStore.getState().announce(`Imported ${out.run.result.points.length} points from ${file.name}.`);
    if (out.warnings.length) setImportError(out.warnings.join(' '));
  };

  return (
    <section className="results-panel" aria-label="Results" data-testid="results-panel">
      <div className="sr-only" aria-live="polite" data-testid="announcement">
        {announcement}
      </div>
      <h2>Results</h2>
      <div className="results-tools">
        <label>
          trail
          <input
            type="number"
            min={0}
            max={50}
            value={overlay.trail}
            aria-label="Trail length"
            onChange={(e) => useResultsStore.getState().setOverlay({ trail: Math.max(0, Math.min(50, Number(e.target.value) || 0)) })}
          />
        </label>
        <label>
          <input type="checkbox" checked={overlay.interpolate} onChange={(e) => useResultsStore.getState().setOverlay({ interpolate: e.target.checked })} />
          interpolate
        </label>
        <label className="import-button">
          Import JSON…
          <input type="file" accept=".json,application/json" data-testid="import-input" onChange={(e) => void importFile(e.target.files?.[0]).finally(() => (e.target.value = ''))} />
        </label>
      </div>
      {(importError || storageError) && (
        <div role="alert" className="results-error">
          {importError ?? storageError}
        </div>
      )}
      {runs.length === 0 && <p className="results-muted">No questions about this video yet.</p>}
      {active && <ExportBar run={active} />}
      <ol className="runs">
        {[...runs].reverse().map((run) => (
          <RunCard key={run.id} run={run} active={run.id === active?.id} />
        ))}
      </ol>
    </section>
  );
}

function RunCard({ run, active }: { run: Run; active: boolean }) {
  const compare = useResultsStore((s) => s.compare);
  const asking = useAskStore((s) => s.status === 'running');
  // A re-run goes where a new question would: the local model, or the answer server while it is on.
  const localReady = useModelStore((s) => s.status === 'ready');
  const serverOn = useServerStore((s) => s.on);
  const modelReady = localReady || serverOn;
  const store = useResultsStore.getState();
  const r = run.result;
  const comparing = compare?.includes(run.id) ?? false;
  const name = useResultsStore((s) => runIdentities(s.runs).get(run.id)?.name);
  const editing = useEditStore((s) => s.runId === run.id) && run.status !== 'running';

  // Editing draws the run (a run must be on the video to be edited).
  const toggleEdit = () => {
    if (editing) return useEditStore.getState().stop();
    if (!run.visible) store.toggleVisible(run.id);
    useEditStore.getState().start(run.id);
  };

  // Opens the comparison with this run as A and its default partner (see compare-pair.ts) as B.
  const toggleCompare = () => {
    const s = useResultsStore.getState();
    if (comparing) return s.setCompare(null);
    const partner = defaultPartner(s.runs, run.id);
    if (partner) s.setCompare([run.id, partner]);
  };

  return (
    <li className={`run${run.visible ? '' : ' hidden-run'}${active ? ' active-run' : ''}`} data-testid="run" data-run-id={run.id} data-status={run.status} aria-current={active ? 'true' : undefined}>
      <div className="run-head">
        {/* Showing a run by hand pins it: newer runs no longer hide it. */}
        <label className="run-show" title="Show on video (a run shown here stays drawn when newer runs arrive)">
          <input type="checkbox" checked={run.visible} onChange={() => store.toggleVisible(run.id)} aria-label={`Show “${run.question}” on the video`} />
        </label>
        {/* Choosing a run points the export bar at it. */}
        <label className="run-question">
          <input type="radio" name="active-run" checked={active} onChange={() => store.setActiveRun(run.id)} aria-label={`Select “${run.question}” for export`} />
          <span className="run-name" data-testid="run-name">
            {name}
          </span>{' '}
          {run.question}
        </label>
        <span className="run-count" data-testid="run-count" title="objects found">
          {run.status === 'running' ? '…' : runCount(r)}
        </span>
      </div>
      <div className="results-muted">
        {run.scope.label} · {r.model.id} {r.model.dtype} · {run.status}
        {run.imported ? ' · imported' : ''}
        {followUpText(run, useResultsStore.getState().runs)}
        {run.error ? ` · ${run.error}` : ''}
        {r.original && (
          <span className="run-edited" data-testid="run-edited" title="Points corrected by hand; the model's points are kept in its JSON file">
            edited
          </span>
        )}
      </div>
      <div className="run-actions">
        <button type="button" onClick={() => void askQuestion(run.question, run.preset, run.scope, run)} disabled={asking || !modelReady || run.status === 'running'}>
          Re-run
        </button>
        <button type="button" aria-pressed={editing} onClick={toggleEdit} disabled={run.status === 'running'} aria-label={`Edit points of “${run.question}”`}>
          Edit points
        </button>
        <label>
          <input type="checkbox" checked={comparing} onChange={toggleCompare} disabled={useResultsStore.getState().runs.length < 2} aria-label={`Compare “${run.question}” with another run`} />
          compare
        </label>
        <button type="button" onClick={() => store.removeRun(run.id)} disabled={run.status === 'running'} aria-label={`Delete “${run.question}”`}>
          Delete
        </button>
      </div>
      {r.warnings.length > 0 && <div className="results-muted">{r.warnings.length} parser note(s): {r.warnings.slice(0, 2).join('; ')}</div>}
      {editing && <EditBar run={run} />}
      {run.visible && <TrackList run={run} />}
    </li>
  );
}

function TrackList({ run }: { run: Run }) {
  const info = useVideoStore((s) => s.info)!;
  const frame = useVideoStore((s) => s.frame);
  const selected = useResultsStore((s) => s.selected);
  const settings = useResultsStore((s) => s.overlay);
  const listRef = useRef<HTMLUListElement>(null);
  // As drawn (its run's tag and colours), so each swatch matches its marker.
  const all = useVisibleTracks();
  const tracks = all.filter((t) => t.runId === run.id);
  if (tracks.length === 0) return null;
  const here = new Map(markersAt(tracks, frame, info.frameTimes[frame], settings).map((m) => [m.trackId, m]));
  return (
    <ul className="tracks" ref={listRef} aria-label={`Objects of “${run.question}”`}>
      {tracks.map((t) => {
        const isSelected = selected?.runId === run.id && selected.trackId === t.id;
        const pts = t.steps.filter((s) => s.point);
        const m = here.get(t.id);
        return (
          <li key={t.id} data-testid="track" data-track={t.id}>
            <button
              type="button"
              className="track-button"
              aria-pressed={isSelected}
              onClick={() => {
                useResultsStore.getState().select(isSelected ? null : { runId: run.id, trackId: t.id });
                if (!isSelected && pts[0]) useVideoStore.getState().seek(pts[0].frame);
              }}
            >
              <span className="swatch" style={{ background: t.color }} aria-hidden="true" />
              #{t.id}
              {t.label ? ` ${t.label}` : ''} · {pts.length} point{pts.length === 1 ? '' : 's'}
              {pts.length > 0 && ` · ${formatTime(pts[0].time)}${pts.length > 1 ? `–${formatTime(pts[pts.length - 1].time)}` : ''}`}
              <span className="results-muted" data-testid="track-here">
                {m ? ` · here (${Math.round(m.x)}, ${Math.round(m.y)})${m.exact ? '' : ' held'}` : ' · not on this frame'}
              </span>
            </button>
            {isSelected && (
              <ol className="points">
                {pts.map((s) => (
                  <li key={s.time}>
                    <button type="button" onClick={() => useVideoStore.getState().seek(s.frame)} aria-current={s.frame === frame ? 'true' : undefined}>
                      frame {s.frame + 1} · {formatTime(s.time)} · ({Math.round(s.point!.x)}, {Math.round(s.point!.y)})
                    </button>
                  </li>
                ))}
              </ol>
            )}
          </li>
        );
      })}
    </ul>
  );
}

/** " · follow-up to Run 2 (1 earlier turn)" for a follow-up; the earlier run may have been deleted since. */
function followUpText(run: Run, runs: Run[]): string {
  const turns = run.result.query.history?.length ?? 0;
  if (turns === 0) return '';
  const to = run.followUpOf ? runIdentities(runs).get(run.followUpOf)?.tag : undefined;
  return ` · follow-up${to ? ` to ${to}` : ''} (${turns} earlier turn${turns === 1 ? '' : 's'})`;
}
