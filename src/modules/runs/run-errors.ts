import { ZodError } from 'zod';

/**
 * A run failed for a reason that another attempt cannot change (its parameters do not parse, the
 * selector or template it names is gone): the run ends FAILED with this reason at once, and the
 * queue does not retry it.
 */
export class PermanentRunError extends Error {
  override readonly name = 'PermanentRunError';
}

/** Stored parameters that no longer parse are as permanent as a missing selector. */
export function permanentReason(error: unknown): string | null {
  if (error instanceof PermanentRunError) return error.message;
  if (error instanceof ZodError) return `The run's parameters are invalid: ${error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`;
  return null;
}
