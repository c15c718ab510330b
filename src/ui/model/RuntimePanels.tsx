// The model panel and the ask box, rendered into the layout's side panel (<aside id="side-panel">)
// when the page has one, else in place.
import { useEffect, useState } from 'react';
import { createPortal } from 'react-dom';
import { AskBox, type AskBoxProps } from '../ask/AskBox.tsx';
import { ModelPanel } from './ModelPanel.tsx';

export function RuntimePanels(props: AskBoxProps) {
  const [host, setHost] = useState<HTMLElement | null>(null);
  useEffect(() => setHost(document.getElementById('side-panel')), []);
  const panels = (
    <div className="runtime-panels">
      <ModelPanel />
      <AskBox {...props} />
    </div>
  );
  return host ? createPortal(panels, host) : panels;
}
