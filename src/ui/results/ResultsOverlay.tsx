// The Konva overlay over the player: markers (filled shape + contrasting ring), id/label text,
// trails (dashed across gaps) and a count badge naming its run, for the shown runs at the current
// frame. Each label carries its run's tag, so ids are unique on screen. Clicking a marker selects its track.
// In "Edit points" mode the edited run's markers on its sampled frames can be dragged, and a click on
// the video elsewhere adds a point (./edit-actions.ts).
import type { KonvaEventObject } from 'konva/lib/Node';
import { Circle, Group, Label, Line, Rect, Tag, Text } from 'react-konva';
import { useEditStore } from '../../state/edit-store.ts';
import { addPointAt, movePointTo } from './edit-actions.ts';
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
  const editing = useEditStore((s) => s.runId);
  const editable = useResultsStore((s) => s.runs.some((r) => r.id === editing && r.visible && r.status !== 'running'));
  const tracks = useVisibleTracks();
  if (!info) return null;
  const markers = markersAt(tracks, frame, info.frameTimes[frame], settings);
  const r = markerRadius(info.width, info.height);
  return (
    <Group>
      {editable && (
        // Under the markers: a click on the video away from them adds a point (in frame pixels).
        <Rect
          name="edit-surface"
          width={info.width}
          height={info.height}
          fill="rgba(0,0,0,0)"
          onClick={(e) => addPointAt(e.target.getRelativePointerPosition()!)}
          onTap={(e) => addPointAt(e.target.getRelativePointerPosition()!)}
          onMouseEnter={(e) => cursor(e, 'crosshair')}
          onMouseLeave={(e) => cursor(e, '')}
        />
      )}
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
        // Only a point the model (or the user) placed on this frame moves, not one held from an earlier frame.
        const draggable = editable && m.runId === editing && m.exact;
        const outline = shapeOutline(m.shape, r);
        const common = {
          fill: m.color,
          stroke: isSelected ? '#000000' : RING_COLOR,
          strokeWidth: Math.max(1.5, r * (isSelected ? 0.55 : 0.3)),
          onClick: () => useResultsStore.getState().select(isSelected ? null : { runId: m.runId, trackId: m.trackId }),
          onTap: () => useResultsStore.getState().select({ runId: m.runId, trackId: m.trackId }),
        };
        return (
          <Group
            key={`${m.runId}:${m.trackId}`}
            x={m.x}
            y={m.y}
            name={draggable ? 'editable-marker' : undefined}
            draggable={draggable}
            onDragStart={() => useResultsStore.getState().select({ runId: m.runId, trackId: m.trackId })}
            onDragEnd={(e) => {
              movePointTo(m.runId, m.trackId, e.target.position());
              // Back to where the result puts it (inside the frame, or unmoved when refused).
              e.target.position({ x: m.x, y: m.y });
            }}
            onMouseEnter={(e) => draggable && cursor(e, 'move')}
            onMouseLeave={(e) => draggable && cursor(e, '')}
          >
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

function cursor(e: KonvaEventObject<MouseEvent>, style: string) {
  const stage = e.target.getStage();
  if (stage) stage.container().style.cursor = style;
}
