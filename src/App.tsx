import { useCallback, useMemo, useState } from 'react';
import { useVideoStore } from './state/video-store.ts';
import { RuntimePanels } from './ui/model/RuntimePanels.tsx';
import { OpenButton, useWindowDrop } from './ui/video/DropZone.tsx';
import { Player } from './ui/video/Player.tsx';
import { ShortcutSheet } from './ui/video/ShortcutSheet.tsx';
import { Timeline } from './ui/video/Timeline.tsx';
import { ErrorBanner, VideoInfoLine } from './ui/video/VideoInfoLine.tsx';
import { videoSelectionSource } from './ui/video/selection-source.ts';
import { useShortcuts } from './ui/video/useShortcuts.ts';
import './styles.css';

export function App() {
  const dragging = useWindowDrop();
  const [sheet, setSheet] = useState(false);
  const toggleSheet = useCallback(() => setSheet((v) => !v), []);
  useShortcuts(toggleSheet);
  const info = useVideoStore((s) => s.info);
  const selection = useVideoStore((s) => s.selection);
  const frame = useVideoStore((s) => s.frame);
  const maxFrames = useVideoStore((s) => s.maxFrames);
  // Recomputed when what would be sent changes.
  const frameSource = useMemo(() => videoSelectionSource(), [info, selection, frame, maxFrames]);

  return (
    <div className="app">
      <header>
        <h1>Molmo2 Web</h1>
        <span className="tagline">video grounding, entirely in your browser</span>
        <OpenButton />
        <button type="button" className="help" onClick={toggleSheet} aria-label="Keyboard shortcuts">
          ?
        </button>
      </header>
      <ErrorBanner />
      <main>
        <section className="video-column">
          <VideoInfoLine />
          <Player />
          <Timeline />
        </section>
        <aside id="side-panel" />
      </main>
      <RuntimePanels frameSource={frameSource} />
      {dragging && <div className="drop-overlay">Drop the video to open it</div>}
      {sheet && <ShortcutSheet onClose={toggleSheet} />}
    </div>
  );
}
