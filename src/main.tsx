import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import { registerServiceWorker, setServerHost, untilControlled } from './security/service-worker.ts';
import { decoder } from './ui/video/decode-client.ts';

// The service worker must control the page before the workers start, so that their files are kept
// for offline use and they get the app's security policy (on later visits it already does).
await registerServiceWorker();
await untilControlled(3000);
// "Answer on a server" starts off on every page load: no answer server stays admitted from before.
void setServerHost(null);
// Start the decode worker now, so its files are kept for offline use even before a video is opened.
decoder();

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
