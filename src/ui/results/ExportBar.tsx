// The one set of export controls, for the selected run: a format and Export, and the annotated
// video (or image) with its progress and Stop. A run without points is not written as an empty
// file: the bar says why instead. Each saved file is named in a polite status line.
import { useState } from 'react';
import { errorCode } from '../../../workers/worker-error.ts';
import { useResultsStore } from '../../state/results-store.ts';
import type { Run } from '../../state/results-types.ts';
import { useVideoStore } from '../../state/video-store.ts';
import { cancelAnnotatedVideo, download, emptyExportMessage, EXPORT_FORMATS, exportAnnotatedVideo, exportFile, type ExportFormat } from './export-actions.ts';

export function ExportBar({ run }: { run: Run }) {
  const info = useVideoStore((s) => s.info)!;
  // An opened image is a one-frame video; its annotated copy is an image.
  const still = info.container === 'image';
  const [format, setFormat] = useState<ExportFormat>('json');
  // The annotated export in progress, and which run it is of (the selection may change meanwhile).
  const [video, setVideo] = useState<{ question: string; done: number; total: number } | null>(null);
  const [saved, setSaved] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  // A warning is about the run it was given for: another selected run drops it.
  const [problemRun, setProblemRun] = useState(run.id);
  if (problemRun !== run.id) {
    setProblemRun(run.id);
    setProblem(null);
  }
  const running = run.status === 'running';

  const begin = () => {
    setSaved('');
    setProblem(null);
  };

  const exportRun = () => {
    begin();
    const empty = emptyExportMessage(run, format);
    if (empty) return setProblem(empty);
    const f = exportFile(run, format, info);
    download(f.name, f.blob);
    setSaved(`Saved ${f.name}`);
  };

  const annotated = async () => {
    begin();
    const file = useVideoStore.getState().file;
    if (!file) return setProblem('The video file is no longer available; open it again.');
    setVideo({ question: run.question, done: 0, total: 1 });
    try {
      const out = await exportAnnotatedVideo(run, info, file, useResultsStore.getState().overlay, (p) =>
        setVideo({ question: run.question, done: p.framesDone, total: p.framesTotal }),
      );
      download(out.name, new Blob([out.video.data], { type: out.video.mimeType }));
      setSaved(still ? `Saved ${out.name}` : `Saved ${out.name} (${out.video.frames} frames)`);
    } catch (e) {
      const m = e instanceof Error ? e.message : String(e);
      setProblem(errorCode(e) === 'cancelled' ? 'Video export stopped.' : `The annotated ${still ? 'image' : 'video'} could not be made: ${m}`);
    } finally {
      setVideo(null);
    }
  };

  return (
    <section className="export-bar" aria-label="Export" data-testid="export-bar">
      <div className="export-of">
        Export <span className="export-question">“{run.question}”</span>
        {running && <span className="results-muted"> (still running)</span>}
      </div>
      <div className="run-actions">
        <select value={format} onChange={(e) => setFormat(e.target.value as ExportFormat)} aria-label="Export format">
          {EXPORT_FORMATS.map((f) => (
            <option key={f.id} value={f.id}>
              {f.name}
              {f.note ? ` (${f.note})` : ''}
            </option>
          ))}
        </select>
        <button type="button" disabled={running} onClick={exportRun}>
          Export
        </button>
        {video ? (
          <>
            <progress max={video.total} value={video.done} aria-label={still ? 'Annotated image progress' : 'Annotated video progress'} title={`“${video.question}”`} />
            <button type="button" onClick={cancelAnnotatedVideo}>
              Stop
            </button>
          </>
        ) : (
          <button type="button" onClick={() => void annotated()} disabled={running}>
            {still ? 'Annotated image' : 'Annotated video'}
          </button>
        )}
      </div>
      {problem && (
        <div role="alert" className="results-error" data-testid="export-problem">
          {problem}
        </div>
      )}
      <div role="status" className="export-saved" data-testid="export-status">
        {saved}
      </div>
    </section>
  );
}
