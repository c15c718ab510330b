// The app's own files (the service worker, models/index.json, bundled models) are addressed relative
// to the page — index.html sits at the app's root — never from the host's root, so a build works from
// any folder of a static host (vite.config.ts: base './').
export function appUrl(path: string): string {
  return new URL(path, document.baseURI).href;
}
