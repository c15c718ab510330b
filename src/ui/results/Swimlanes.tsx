// One lane per shown track under the filmstrip: solid spans where the model reported the object, gaps
// where it did not, and a marker per model point that seeks to its frame.
import { formatTime } from '../../molmo2/video.ts';
import { useResultsStore } from '../../state/results-store.ts';
import { useVideoStore } from '../../state/video-store.ts';
import { useVisibleTracks } from './use-tracks.ts';

export function Swimlanes() {
  const info = useVideoStore((s) => s.info);
  const frame = useVideoStore((s) => s.frame);
  const selected = useResultsStore((s) => s.selected);
  const tracks = useVisibleTracks();
  if (!info || tracks.length === 0) return null;
  const duration = info.duration || info.frameTimes[info.frameCount - 1] || 1;
  const pct = (t: number) => `${(Math.min(Math.max(t, 0), duration) / duration) * 100}%`;
  const endTime = (f: number) => info.frameTimes[Math.min(f, info.frameCount - 1)] + (f >= info.frameCount ? 1 / (info.fps || 30) : 0);

  return (
    <div className="swimlanes" data-testid="swimlanes" aria-label="Tracks on the timeline">
      {tracks.map((t) => {
        const isSelected = selected?.runId === t.runId && selected.trackId === t.id;
        const spans: { from: number; to: number }[] = [];
        t.steps.forEach((s, k) => {
          if (!s.point || t.mode === 'images') return;
          const next = t.steps[k + 1];
          spans.push({ from: s.time, to: next ? next.time : endTime(t.endFrame) });
        });
        return (
          <div
            key={`${t.runId}:${t.id}`}
            className={`lane${isSelected ? ' selected' : ''}`}
            data-testid="swimlane"
            data-track={t.id}
            onClick={() => useResultsStore.getState().select({ runId: t.runId, trackId: t.id })}
          >
            <span className="lane-name" style={{ color: t.color }}>
              #{t.id}
              {t.label ? ` ${t.label}` : ''}
            </span>
            <div className="lane-body">
              {spans.map((s) => (
                <div key={s.from} className="lane-span" style={{ left: pct(s.from), width: `calc(${pct(s.to)} - ${pct(s.from)})`, background: t.color }} />
              ))}
              {t.steps
                .filter((s) => s.point)
                .map((s) => (
                  <button
                    type="button"
                    key={s.time}
                    className={`lane-marker${s.frame === frame ? ' current' : ''}`}
                    data-testid="lane-marker"
                    data-frame={s.frame}
                    style={{ left: pct(s.time), borderColor: t.color }}
                    aria-label={`Track ${t.id} at ${formatTime(s.time)}, frame ${s.frame + 1}: go there`}
                    onClick={(e) => {
                      e.stopPropagation();
                      useResultsStore.getState().select({ runId: t.runId, trackId: t.id });
                      useVideoStore.getState().seek(s.frame);
                    }}
                  />
                ))}
            </div>
          </div>
        );
      })}
    </div>
  );
}
