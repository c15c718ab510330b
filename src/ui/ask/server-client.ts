// The page's server worker (workers/server-ask-api.ts): started for the first question to the answer
// server, after the service worker has been told that server's origin (its policy is fixed when it
// starts), and ended when the server is turned off or another one is chosen. The page itself can
// never reach the server: its own policy admits only this origin.
import * as Comlink from 'comlink';
import { startServerAskWorker, type ServerAnswer, type ServerAskEvent, type ServerAskRequest, type ServerAskWorker } from '../../../workers/server-ask-api.ts';
import { setServerHost } from '../../security/service-worker.ts';

interface Running {
  w: ServerAskWorker;
  origin: string;
  /** Rejects when the worker fails or is ended, so no call waits on a worker that is gone. */
  ended: Promise<never>;
  end(e: Error): void;
}

let worker: Running | undefined;

function start(origin: string): Running {
  let end!: (e: Error) => void;
  const ended = new Promise<never>((_, reject) => (end = reject));
  ended.catch(() => {}); // observed by the calls that race it
  const w = startServerAskWorker((why) => {
    if (worker?.w === w) stopServerWorker(new Error(`The worker that talks to the server stopped unexpectedly (${why}); ask again.`));
  });
  return { w, origin, ended, end };
}

/** Sends one question to the server at `origin` (frames transferred); resolves with its answer. */
export async function askOnServer(origin: string, request: ServerAskRequest, onEvent: (e: ServerAskEvent) => void): Promise<ServerAnswer> {
  if (worker && worker.origin !== origin) stopServerWorker();
  if (!worker) {
    // Said again before each start: another tab of the app may have cleared it since.
    if (!(await setServerHost(origin))) {
      throw new Error('Answering on a server needs the app’s service worker, which is not active; reload the page and try again.');
    }
    worker = start(origin);
  }
  const bitmaps = request.frames.map((f) => f.image).filter((b): b is ImageBitmap => typeof ImageBitmap !== 'undefined' && b instanceof ImageBitmap);
  return Promise.race([worker.w.api.ask(Comlink.transfer(request, bitmaps), Comlink.proxy(onEvent)), worker.ended]);
}

export function cancelServerAsk(): void {
  void worker?.w.api.cancel();
}

/** Ends the worker (a question in flight ends with it); the next question starts a fresh one. */
export function stopServerWorker(why = new Error('The question was stopped: answering on the server was turned off.')): void {
  if (!worker) return;
  const { w, end } = worker;
  worker = undefined;
  w.terminate();
  end(why);
}
