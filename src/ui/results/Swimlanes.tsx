// One lane per shown track under the filmstrip: solid spans where the model reported the object, gaps
// where it did not, and a marker per model point that seeks to its frame. A lane is named with its
// run's tag ("Run 2 #1 cups"), as its markers on the video are.
import { memo } from 'react';
import { formatTime } from '../../molmo2/video.ts';
import { useResultsStore } from '../../state/results-store.ts';
import { useVideoStore } from '../../state/video-store.ts';
import { markerText, type OverlayTrack } from '../../overlay/overlay-model.ts';
import { useVisibleTracks } from './use-tracks.ts';

export function Swimlanes() {
  const info = useVideoStore((s) => s.info);
  const frame = useVideoStore((s) => s.frame);
  const selected = useResultsStore((s) => s.selected);
  const tracks = useVisibleTracks();
  if (!info || tracks.length === 0) return null;
  const duration = info.duration || info.frameTimes[info.frameCount - 1] || 1;
  const endOfFrame = (f: number) => (f < info.frameCount ? info.frameTimes[f] : duration);
  return (
    <div className="swimlanes" data-testid="swimlanes" aria-label="Tracks on the timeline">
      {tracks.map((t) => (
        <Lane
          key={`${t.runId}:${t.id}`}
          track={t}
          duration={duration}
          end={endOfFrame(t.endFrame)}
          selected={selected?.runId === t.runId && selected.trackId === t.id}
          // Only the lane with a marker on this frame re-renders when the playhead moves.
          currentFrame={t.steps.some((s) => s.frame === frame && s.point) ? frame : -1}
        />
      ))}
    </div>
  );
}

interface LaneProps {
  track: OverlayTrack;
  duration: number;
  /** Time the track's last held position ends. */
  end: number;
  selected: boolean;
  currentFrame: number;
}

const Lane = memo(function Lane({ track: t, duration, end, selected, currentFrame }: LaneProps) {
  const pct = (x: number) => `${(Math.min(Math.max(x, 0), duration) / duration) * 100}%`;
  const spans: { from: number; to: number }[] = [];
  t.steps.forEach((s, k) => {
    if (!s.point || t.mode === 'images') return;
    const next = t.steps[k + 1];
    spans.push({ from: s.time, to: next ? next.time : end });
  });
  return (
    <div className={`lane${selected ? ' selected' : ''}`} data-testid="swimlane" data-run-id={t.runId} data-track={t.id} onClick={() => useResultsStore.getState().select({ runId: t.runId, trackId: t.id })}>
      <span className="lane-name" data-testid="lane-name" style={{ color: t.color }}>
        {markerText({ runTag: t.runTag, trackId: t.id, label: t.label })}
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
              className={`lane-marker${s.frame === currentFrame ? ' current' : ''}`}
              data-testid="lane-marker"
              data-frame={s.frame}
              style={{ left: pct(s.time), borderColor: t.color }}
              aria-label={`${t.runTag ? `${t.runTag} t` : 'T'}rack ${t.id} at ${formatTime(s.time)}, frame ${s.frame + 1}: go there`}
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
});
