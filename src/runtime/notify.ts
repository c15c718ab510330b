// Calls a page callback (progress, answer events) without waiting for it: a proxied callback answers
// asynchronously, and a page that went away must not stop the work.
export type Callback<T> = (value: T) => unknown;

export function notify<T>(cb: Callback<T> | undefined, value: T): void {
  if (!cb) return;
  try {
    void Promise.resolve(cb(value)).catch(() => {});
  } catch {
    // The page went away; nothing to tell.
  }
}
