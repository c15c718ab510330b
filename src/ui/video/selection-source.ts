// What a question about the video sends: the selected range (sampled as Molmo2 samples video), the
// selected frames (as several images), or the current frame.
import type { FrameSource } from '../ask/frame-source.ts';
import { selectionSampleTimes, useVideoStore } from '../../state/video-store.ts';
import { formatTime } from '../../molmo2/video.ts';
import { decoder } from './decode-client.ts';

export function videoSelectionSource(): FrameSource | undefined {
  const { info, selection, frame, maxFrames } = useVideoStore.getState();
  if (!info) return undefined;
  return {
    describe() {
      if (selection.kind === 'range') return `${selectionSampleTimes(selection, maxFrames).length} frames, ${formatTime(selection.start)}–${formatTime(selection.end)}`;
      if (selection.kind === 'frames') return `${selection.frames.length} selected frame(s)`;
      return `frame ${frame + 1} at ${formatTime(info.frameTimes[frame])}`;
    },
    async collect() {
      if (selection.kind === 'range') {
        const times = selectionSampleTimes(selection, maxFrames);
        const bitmaps = await decoder().framesAt(times);
        // Timestamps are relative to the range start, as for a clip of that range.
        return { kind: 'video', frames: bitmaps.map((image, k) => ({ image, timestamp: times[k] - selection.start })) };
      }
      const frames = selection.kind === 'frames' ? selection.frames : [frame];
      const images = await Promise.all(frames.map((f) => decoder().frameAt(f)));
      return { kind: 'images', images };
    },
  };
}
