import { Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';

/** Where a client connects: a test app (or anything with its GraphQL URL), or the URL itself. */
export type WsTarget = string | { graphqlUrl: string };

/**
 * A real graphql-ws client on the GraphQL endpoint's own port and path, with the API key in
 * connectionParams as the server reads it. It never retries: a closed connection (4403 and the like)
 * is what tests look at, not something to hide. Lazy, so it connects on its first operation.
 */
export function wsClient(target: WsTarget, key: string, connectionParams: Record<string, unknown> = {}): Client {
  const graphqlUrl = typeof target === 'string' ? target : target.graphqlUrl;
  return createClient({
    url: graphqlUrl.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${key}`, ...connectionParams },
    retryAttempts: 0,
    lazy: true,
  });
}

/** Runs one query or mutation over the connection; resolves with its result once the operation completes. */
export function wsExecute(client: Client, query: string, variables?: Record<string, unknown>): Promise<any> {
  return new Promise((resolve, reject) => {
    let result: unknown;
    client.subscribe({ query, variables }, { next: (value) => (result = value), error: reject, complete: () => resolve(result) });
  });
}

/** The clients a test file opens, so afterAll closes every one of them (an open socket keeps jest alive). */
export class WsClients {
  private readonly clients: Client[] = [];

  open(target: WsTarget, key: string, connectionParams?: Record<string, unknown>): Client {
    const client = wsClient(target, key, connectionParams);
    this.clients.push(client);
    return client;
  }

  async disposeAll(): Promise<void> {
    await Promise.all(this.clients.splice(0).map((c) => c.dispose()));
  }
}
