/**
 * The fake OpenAI server as a process of its own, so a benchmark measures the worker without the
 * server's work on the same event loop. Prints `{"baseUrl": ...}` once listening; GET
 * /_fake/stats gives arrival times and the most requests in flight.
 */
import { FakeOpenAIServer } from './openai-server';

async function main(): Promise<void> {
  const server = await FakeOpenAIServer.start({ latencyMs: Number(process.env.FAKE_LATENCY_MS ?? 0), recordBodies: false });
  process.stdout.write(`${JSON.stringify({ baseUrl: server.baseUrl })}\n`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

void main();
