import { createSourceEventStream, execute, ExecutionArgs, ExecutionResult } from 'graphql';

type PromiseOrValue<T> = Promise<T> | T;

/**
 * graphql's `subscribe`, except that subscribers who would get the same result for an event share
 * one execution of it. A subscription's source stream can hand the very same payload object to
 * many subscribers (runUpdated: one run read per event for all of them); executing the selection
 * over it once per subscriber was most of the api's work in a fan-out to a thousand sockets.
 *
 * `shareKey` says who may share: the same operation text, operation name and variables, for the
 * same project, user and role (what field resolvers and role checks look at), so a shared result
 * is exactly the result this subscriber's own execution would give. It runs with the context of the
 * first subscriber to take the event; results are kept per payload object and go with it.
 * Without a key (null), every event is executed for this subscriber alone, as graphql does.
 */
export async function subscribeSharingResults(args: ExecutionArgs, shareKey: string | null): Promise<AsyncGenerator<ExecutionResult, void, void> | ExecutionResult> {
  const stream = await createSourceEventStream(args);
  if (!isAsyncIterable(stream)) return stream;
  const executeFor = (payload: unknown): PromiseOrValue<ExecutionResult> => {
    if (shareKey === null || payload === null || typeof payload !== 'object') return execute({ ...args, rootValue: payload });
    let byKey = resultsByPayload.get(payload);
    if (!byKey) resultsByPayload.set(payload, (byKey = new Map()));
    let result = byKey.get(shareKey);
    if (!result) byKey.set(shareKey, (result = execute({ ...args, rootValue: payload })));
    return result;
  };
  return mapEvents(stream, executeFor);
}

const resultsByPayload = new WeakMap<object, Map<string, PromiseOrValue<ExecutionResult>>>();

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof (value as AsyncIterable<unknown> | null)?.[Symbol.asyncIterator] === 'function';
}

/**
 * Maps a source stream as graphql's own (internal) mapAsyncIterator does: `return()` goes straight
 * to the source, so a client's `complete` ends a subscription that is waiting for its next event
 * (an async generator would queue it behind that event).
 */
function mapEvents<T, U>(iterable: AsyncIterable<T>, map: (value: T) => PromiseOrValue<U>): AsyncGenerator<U, void, void> {
  const iterator = iterable[Symbol.asyncIterator]();
  const mapResult = async (result: IteratorResult<T>): Promise<IteratorResult<U, void>> => {
    if (result.done) return { value: undefined, done: true };
    try {
      return { value: await map(result.value), done: false };
    } catch (error) {
      await iterator.return?.().catch(() => undefined);
      throw error;
    }
  };
  return {
    next: async () => mapResult(await iterator.next()),
    return: async () => (iterator.return ? mapResult(await iterator.return()) : { value: undefined, done: true }),
    throw: async (error: unknown) => {
      if (iterator.throw) return mapResult(await iterator.throw(error));
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  } as AsyncGenerator<U, void, void>;
}
