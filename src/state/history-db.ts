// The question history of each video, kept in IndexedDB and keyed by the file's fingerprint, so
// reopening the same file (even renamed) brings back its runs. Failures (private mode, quota) are
// reported to the caller; the app keeps working with the in-memory history.
import type { Run } from './results-types.ts';

const DB_NAME = 'molmo2-web-history';
const STORE = 'runs';

let opening: Promise<IDBDatabase> | undefined;

function db(): Promise<IDBDatabase> {
  opening ??= new Promise<IDBDatabase>((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => {
      const store = req.result.createObjectStore(STORE, { keyPath: 'id' });
      store.createIndex('fingerprint', 'fingerprint');
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB could not be opened'));
  }).catch((e: unknown) => {
    opening = undefined;
    throw e;
  });
  return opening;
}

function done<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
  });
}

/** The runs of one video, oldest first. */
export async function loadRuns(fingerprint: string): Promise<Run[]> {
  const store = (await db()).transaction(STORE, 'readonly').objectStore(STORE);
  const runs = await done(store.index('fingerprint').getAll(IDBKeyRange.only(fingerprint)) as IDBRequest<Run[]>);
  return runs.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

export async function saveRun(run: Run): Promise<void> {
  await done((await db()).transaction(STORE, 'readwrite').objectStore(STORE).put(run));
}

export async function deleteRun(id: string): Promise<void> {
  await done((await db()).transaction(STORE, 'readwrite').objectStore(STORE).delete(id));
}
