import { LlmGateway } from '../../platform/llm-gateway';
import { forEachConcurrent, RunControl } from '../runs/run-executor';

/**
 * The loop of a run whose items are model calls: at most `concurrency` items at once, progress
 * reported after each, and the run's pacing rows dropped when the attempt ends, however it ends.
 */
export async function forEachModelCall<T>(llm: LlmGateway, runId: string, items: Iterable<T>, concurrency: number, control: RunControl, work: (item: T) => Promise<void>): Promise<void> {
  try {
    await forEachConcurrent(items, concurrency, control.signal, async (item) => {
      await work(item);
      control.progressed();
    });
  } finally {
    await llm.forgetRun(runId).catch(() => undefined);
  }
}
