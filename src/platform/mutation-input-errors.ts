import type { ValidationError } from 'class-validator';
import { getNamedType, getNullableType, GraphQLField, GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLSchema, isObjectType } from 'graphql';
import { ArgumentValidationError } from 'type-graphql';
import { UserError, userError, UserErrorCode, UserErrorsException } from './user-errors';

/**
 * One error channel per mutation (DESIGN.md §4): a mistake in the value of a mutation's input
 * (a range, a length, a format that class-validator checks) is a `userErrors` entry with the path
 * of the field at fault, like every other expected failure of that mutation, not a GraphQL error.
 * What the GraphQL layer refuses itself (wrong types, missing or unknown fields) stays a request
 * error, and so do authorization failures: the auth check runs before the arguments are validated.
 *
 * type-graphql validates arguments inside the field's resolver, before the resolver method (and
 * so its `asPayload`) runs; wrapping each mutation's resolver once, after the schema is built,
 * covers every mutation, present and future, without a middleware on every field of every query.
 */
export function inputMistakesAsUserErrors(schema: GraphQLSchema): GraphQLSchema {
  const mutation = schema.getMutationType();
  if (!mutation) return schema;
  for (const field of Object.values(mutation.getFields())) {
    const payload = payloadType(field);
    if (!payload || !field.resolve) continue;
    const resolve = field.resolve;
    const inputName = field.args.length === 1 ? field.args[0].name : null;
    const emptyLists = Object.values(payload.getFields())
      .filter((f) => f.name !== 'userErrors' && f.type instanceof GraphQLNonNull && getNullableType(f.type) instanceof GraphQLList)
      .map((f) => f.name);
    field.resolve = async (source, args, context, info) => {
      try {
        return await resolve(source, args, context, info);
      } catch (error) {
        const errors = inputUserErrors(error, inputName);
        if (!errors) throw error;
        // Non-null lists of the payload (e.g. recordErrors) answer empty; everything else is null.
        return { ...Object.fromEntries(emptyLists.map((name) => [name, []])), userErrors: errors };
      }
    };
  }
  return schema;
}

/** The payload object type when the mutation returns one with `userErrors`, else null. */
function payloadType(field: GraphQLField<unknown, unknown>): GraphQLObjectType | null {
  const type = getNamedType(field.type);
  return isObjectType(type) && 'userErrors' in type.getFields() ? type : null;
}

function inputUserErrors(error: unknown, inputName: string | null): UserError[] | null {
  if (error instanceof UserErrorsException) return error.errors;
  if (error instanceof ArgumentValidationError) {
    const prefix = inputName ? [inputName] : [];
    return flatten(error.extensions.validationErrors as ValidationError[], prefix);
  }
  return null;
}

/** class-validator's tree (nested inputs and array items are children) as one entry per failing field. */
function flatten(errors: readonly ValidationError[], path: string[]): UserError[] {
  return errors.flatMap((e) => {
    const here = [...path, String(e.property)];
    const messages = Object.values(e.constraints ?? {});
    const own = messages.length ? [userError(UserErrorCode.INVALID, messages.join('; '), here)] : [];
    return [...own, ...flatten(e.children ?? [], here)];
  });
}
