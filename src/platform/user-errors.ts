import { Field, ObjectType, registerEnumType } from 'type-graphql';
import { DomainError, ErrorCode } from './errors';

/** Codes of expected failures returned in a payload's `userErrors`. */
export enum UserErrorCode {
  INVALID = 'INVALID',
  NOT_FOUND = 'NOT_FOUND',
  DUPLICATE = 'DUPLICATE',
  CONFLICT = 'CONFLICT',
  TOO_LARGE = 'TOO_LARGE',
  UNSUPPORTED_MEDIA = 'UNSUPPORTED_MEDIA',
}
registerEnumType(UserErrorCode, {
  name: 'UserErrorCode',
  description: 'Why a mutation refused its input (in `userErrors`); nothing was written.',
  valuesConfig: {
    INVALID: { description: 'A value is out of its range, length or format, or the combination of values is not allowed.' },
    NOT_FOUND: { description: 'A referenced id does not exist or belongs to another project.' },
    DUPLICATE: { description: 'The same thing exists already (for example an image with the same bytes).' },
    CONFLICT: { description: 'The object is in a state that does not allow this now (for example a run still running).' },
    TOO_LARGE: { description: 'A file or a list is over its limit.' },
    UNSUPPORTED_MEDIA: { description: 'A file is not a readable image of a supported type.' },
  },
});

@ObjectType({ description: 'An expected failure of a mutation; nothing was written.' })
export class UserError {
  @Field(() => [String], { nullable: true, description: 'Path to the input field at fault.' })
  field: string[] | null;

  @Field()
  message: string;

  @Field(() => UserErrorCode)
  code: UserErrorCode;
}

export function userError(code: UserErrorCode, message: string, field?: string | string[]): UserError {
  return { code, message, field: field === undefined ? null : Array.isArray(field) ? field : [field] };
}

/** An expected failure thrown deep in a service and returned as `userErrors` by the resolver. */
export class UserErrorsException extends Error {
  constructor(readonly errors: UserError[]) {
    super(errors.map((e) => e.message).join('; '));
  }
}

const fromDomain: Partial<Record<ErrorCode, UserErrorCode>> = {
  [ErrorCode.BAD_USER_INPUT]: UserErrorCode.INVALID,
  [ErrorCode.NOT_FOUND]: UserErrorCode.NOT_FOUND,
  [ErrorCode.CONFLICT]: UserErrorCode.CONFLICT,
};

/**
 * Runs a mutation's service call: expected failures become `userErrors`, authorization and
 * unexpected failures stay GraphQL errors.
 */
export async function asPayload<T extends object>(work: () => Promise<T>): Promise<T & { userErrors: UserError[] }> {
  try {
    return { ...(await work()), userErrors: [] };
  } catch (error) {
    if (error instanceof UserErrorsException) return { userErrors: error.errors } as T & { userErrors: UserError[] };
    if (error instanceof DomainError && fromDomain[error.code]) {
      // A dotted field (`input.selectorModelId`) is a path, as class-validator's are.
      return { userErrors: [userError(fromDomain[error.code]!, error.message, error.field?.split('.'))] } as T & { userErrors: UserError[] };
    }
    throw error;
  }
}
