// Entry of an encoder-pool thread: worker threads do not inherit the parent's TypeScript loader, so
// register tsx here, then load the worker proper (encoder-worker.ts).
import { register } from 'tsx/esm/api';

register();
await import('./encoder-worker.ts');
