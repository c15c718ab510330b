// The code of an error thrown in a worker survives comlink's crossing (over a real MessageChannel).
import * as Comlink from 'comlink';
import { afterEach, describe, expect, it } from 'vitest';
import { errorCode, WorkerError } from './worker-error.ts';
import { installErrorTransfer } from './error-transfer.ts';

installErrorTransfer();

const ports: MessagePort[] = [];
afterEach(() => ports.splice(0).forEach((p) => p.close()));

function across<T extends object>(api: T): Comlink.Remote<T> {
  const { port1, port2 } = new MessageChannel();
  ports.push(port1, port2);
  Comlink.expose(api, port1);
  return Comlink.wrap<T>(port2);
}

const thrown = async (p: Promise<unknown>) => p.then(() => expect.unreachable('it should have thrown'), (e: unknown) => e);

describe('errors crossing a worker', () => {
  it('a WorkerError arrives with its code and exact message', async () => {
    const message = 'The GPU was lost (destroyed), so this answer was stopped and the model unloaded.';
    const remote = across({
      ask: async () => {
        throw new WorkerError('gpu-lost', message);
      },
    });
    const e = await thrown(remote.ask());
    expect(e).toBeInstanceOf(WorkerError);
    expect(errorCode(e)).toBe('gpu-lost');
    expect((e as Error).message).toBe(message);
  });

  it('a plain Error arrives as internal, an abort as cancelled, a subclass keeps its code', async () => {
    class LimitError extends WorkerError {
      constructor(m: string) {
        super('limit', m);
      }
    }
    const remote = across({
      plain: async () => {
        throw new Error('something broke');
      },
      abort: async () => {
        throw new DOMException('the model load was cancelled', 'AbortError');
      },
      limit: async () => {
        throw new LimitError('too many frames');
      },
    });
    const plain = await thrown(remote.plain());
    expect([errorCode(plain), (plain as Error).message]).toEqual(['internal', 'something broke']);
    const abort = await thrown(remote.abort());
    expect([errorCode(abort), (abort as Error).message]).toEqual(['cancelled', 'the model load was cancelled']);
    const limit = await thrown(remote.limit());
    expect([errorCode(limit), (limit as Error).message]).toEqual(['limit', 'too many frames']);
  });

  it('a thrown non-Error crosses as it is; an unknown code reads as internal', async () => {
    const remote = across({
      text: async () => {
        throw 'just text';
      },
    });
    expect(await thrown(remote.text())).toBe('just text');
    expect(errorCode({ code: 'made-up', message: 'x' })).toBe('internal');
  });
});
