// The server worker: sends a question to the answer server the user confirmed (server-ask.ts). Its
// policy, set by the service worker, admits that server's origin and this app's, nothing else.
import * as Comlink from 'comlink';
import { serverAskApi } from './server-ask.ts';
import { installErrorTransfer } from './error-transfer.ts';

installErrorTransfer();
Comlink.expose(serverAskApi());
