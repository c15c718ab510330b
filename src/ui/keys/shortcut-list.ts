// Every key and mouse gesture of the page, as the shortcut sheet lists them. Each entry names what
// its handler does: DropZone.tsx (files), useShortcuts.ts (player), Timeline.tsx (filmstrip),
// AskBox.tsx and ask-keys.ts (asking), ResultsOverlay.tsx and Swimlanes.tsx (results), edit-actions.ts
// (corrections), escape.ts and App.tsx (sheets, panels).
import { PRESETS } from '../ask/presets.ts';

export interface ShortcutGroup {
  name: string;
  items: [keys: string, action: string][];
}

export const SHORTCUT_GROUPS: ShortcutGroup[] = [
  { name: 'Files', items: [['Drop a file on the page', 'Open it (a video or an image)']] },
  {
    name: 'Player',
    items: [
      ['Space / K', 'Play or pause'],
      ['← / →, , / .', 'One frame back / forward'],
      ['Shift + ← / →', 'Ten frames back / forward'],
      ['Home / End', 'First / last frame'],
      ['[ / ]', 'Range in / out at the playhead'],
    ],
  },
  {
    name: 'Filmstrip',
    items: [
      ['Click', 'Select one frame and go to it'],
      ['Shift / Ctrl / ⌘ + click', 'Add a frame to the selection, or take it out'],
      ['Drag', 'Select a time range'],
    ],
  },
  {
    name: 'Asking',
    items: [
      ['/', 'Go to the question'],
      [`1 – ${PRESETS.length}`, `Preset: ${PRESETS.map((p) => p.name).join(', ')}`],
      ['Enter', 'Ask (in the question)'],
      ['Shift + Enter', 'New line (in the question)'],
      ['Esc', 'Stop the running question (when no sheet or panel is open)'],
    ],
  },
  {
    name: 'Results',
    items: [
      ['Click a marker on the video', 'Select its track, or clear the selection'],
      ['Click a swimlane', 'Select its track'],
      ['Click a point on a swimlane', 'Go to its frame'],
    ],
  },
  {
    name: 'Corrections (a run\'s “Edit points” mode, on its sampled frames)',
    items: [
      ['Drag a marker', 'Move its point'],
      ['Click the video away from the markers', 'Add a point to the object chosen under “Add to”'],
      ['Click a marker, then Delete / Backspace', 'Delete its point on this frame'],
      ['Ctrl / ⌘ + Z', 'Undo the last correction (of the run being edited, else of the run selected for export)'],
      ['Ctrl / ⌘ + Shift + Z, Ctrl + Y', 'Redo'],
    ],
  },
  {
    name: 'Sheets and panels',
    items: [
      ['?', 'Show or hide this sheet'],
      ['Esc', 'Close this sheet or the Stats panel, or leave Edit points'],
    ],
  },
];
