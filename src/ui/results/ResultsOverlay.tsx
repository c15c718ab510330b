// The Konva overlay over the player: markers (filled shape + contrasting ring), id/label text,
// trails (dashed across gaps) and a count badge naming its run, for the shown runs at the current
// frame. Each label carries its run's tag, so ids are unique on screen. Clicking a marker selects its track.
import { Circle, Group, Label, Line, Tag, Text } from 'react-konva';
import { useResultsStore } from '../../state/results-store.ts';
import { useVideoStore } from '../../state/video-store.ts';
import { markerRadius, markersAt, markerText, shapeOutline } from '../../overlay/overlay-model.ts';
import { RING_COLOR, SHADOW_COLOR } from '../../overlay/draw-overlay.ts';
import { useVisibleTracks } from './use-tracks.ts';
import { countBadge, runIdentities } from './run-identity.ts';

export function ResultsOverlay() {
  const info = useVideoStore((s) => s.info);
  const frame = useVideoStore((s) => s.frame);
  const settings = useResultsStore((s) => s.overlay);
  const selected = useResultsStore((s) => s.selected);
  // The badge is the newest shown run's that found something, and says which run that is.
  const badge = useResultsStore((s) => {
    const run = [...s.runs].reverse().find((r) => r.visible && r.result.points.length + (r.result.count ?? 0) > 0);
    return run ? countBadge(runIdentities(s.runs).get(run.id)!.name, run.result) : undefined;
  });
  const tracks = useVisibleTracks();
  if (!info) return null;
  const markers = markersAt(tracks, frame, info.frameTimes[frame], settings);
  const r = markerRadius(info.width, info.height);
  return (
    <Group>
      {markers.map((m) =>
        m.trail.map((seg, k) => (
          <Line
            key={`${m.runId}:${m.trackId}:trail:${k}`}
            points={seg.points.flatMap((p) => [p.x, p.y])}
            stroke={m.color}
            strokeWidth={Math.max(1.5, r * 0.35)}
            opacity={0.75}
            dash={seg.dashed ? [r * 0.8, r * 0.8] : undefined}
            lineCap="round"
            lineJoin="round"
            listening={false}
          />
        )),
      )}
      {markers.map((m) => {
        const isSelected = selected?.runId === m.runId && selected.trackId === m.trackId;
        const outline = shapeOutline(m.shape, r);
        const common = {
          fill: m.color,
          stroke: isSelected ? '#000000' : RING_COLOR,
          strokeWidth: Math.max(1.5, r * (isSelected ? 0.55 : 0.3)),
          onClick: () => useResultsStore.getState().select(isSelected ? null : { runId: m.runId, trackId: m.trackId }),
          onTap: () => useResultsStore.getState().select({ runId: m.runId, trackId: m.trackId }),
        };
        return (
          <Group key={`${m.runId}:${m.trackId}`} x={m.x} y={m.y}>
            {outline ? <Line points={outline} closed {...common} /> : <Circle radius={r} {...common} />}
            <Text
              text={markerText(m)}
              x={r * 1.4}
              y={-r * 2.2}
              fontSize={Math.round(r * 1.6)}
              fill="#ffffff"
              stroke={SHADOW_COLOR}
              strokeWidth={Math.max(0.5, r * 0.12)}
              listening={false}
            />
          </Group>
        );
      })}
      {badge && (
        <Label x={r} y={r} listening={false} name="count-badge">
          <Tag fill={SHADOW_COLOR} cornerRadius={r * 0.5} />
          <Text text={badge} fontSize={Math.round(r * 2)} padding={r * 0.6} fill="#ffffff" fontStyle="bold" />
        </Label>
      )}
    </Group>
  );
}
