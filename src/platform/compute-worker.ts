/**
 * Entry of a compute thread (see compute-pool.ts): requires the task's module and calls the named
 * export with the task's arguments. Modules stay loaded, so state they keep (loaded ONNX sessions)
 * lives as long as the thread.
 */
export interface ComputeCall {
  /** Path without extension: the thread's require resolves `.ts` (sources, through ts-node) or `.js` (dist). */
  module: string;
  fn: string;
  args: unknown[];
}

export default async function runComputeCall({ module, fn, args }: ComputeCall): Promise<unknown> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const target = (require(module) as Record<string, unknown>)[fn];
  if (typeof target !== 'function') throw new Error(`${module} has no function ${fn}`);
  return target(...args);
}
