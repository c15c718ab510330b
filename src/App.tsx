import { useCallback, useState } from 'react';
import { AskBox } from './ui/ask/AskBox.tsx';
import { ModelPanel } from './ui/model/ModelPanel.tsx';
import { ServerPanel } from './ui/model/ServerPanel.tsx';
import { CompareView } from './ui/results/CompareView.tsx';
import { ResultsOverlay } from './ui/results/ResultsOverlay.tsx';
import { ResultsPanel } from './ui/results/ResultsPanel.tsx';
import { Swimlanes } from './ui/results/Swimlanes.tsx';
import { OpenButton, useWindowDrop } from './ui/video/DropZone.tsx';
import { Player } from './ui/video/Player.tsx';
import { ShortcutSheet } from './ui/video/ShortcutSheet.tsx';
import { StatsPanel } from './ui/stats/StatsPanel.tsx';
import { Timeline } from './ui/video/Timeline.tsx';
import { SampleNote } from './ui/video/TrySample.tsx';
import { ErrorBanner, VideoInfoLine } from './ui/video/VideoInfoLine.tsx';
import { useShortcuts } from './ui/video/useShortcuts.ts';
import './styles.css';

export function App() {
  const dragging = useWindowDrop();
  const [sheet, setSheet] = useState(false);
  const toggleSheet = useCallback(() => setSheet((v) => !v), []);
  const [stats, setStats] = useState(false);
  useShortcuts(toggleSheet);

  return (
    <div className="app">
      <header>
        <h1>Molmo2 Web</h1>
        <span className="tagline">video grounding, entirely in your browser</span>
        <OpenButton />
        <button type="button" onClick={() => setStats((v) => !v)} aria-pressed={stats}>
          Statistics
        </button>
        <button type="button" className="help" onClick={toggleSheet} aria-label="Keyboard shortcuts">
          ?
        </button>
      </header>
      <ErrorBanner />
      <main>
        <section className="video-column">
          <SampleNote />
          <VideoInfoLine />
          <Player overlay={<ResultsOverlay />} />
          <Timeline />
          <Swimlanes />
          <CompareView />
        </section>
        <aside id="side-panel" className="runtime-panels">
          <ModelPanel />
          <ServerPanel />
          <AskBox />
          <ResultsPanel />
        </aside>
      </main>
      {dragging && <div className="drop-overlay">Drop the video to open it</div>}
      {sheet && <ShortcutSheet onClose={toggleSheet} />}
      {stats && <StatsPanel onClose={() => setStats(false)} />}
    </div>
  );
}
