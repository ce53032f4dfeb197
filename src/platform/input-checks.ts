import {
  DocumentNode,
  getNamedType,
  GraphQLError,
  GraphQLInputType,
  GraphQLSchema,
  isInputObjectType,
  isListType,
  isNonNullType,
  isScalarType,
  Kind,
  OperationDefinitionNode,
  typeFromAST,
  TypeInfo,
  visit,
  visitWithTypeInfo,
} from 'graphql';
import type { ApolloServerPlugin } from '@apollo/server';

/**
 * Postgres text cannot hold U+0000: a NUL byte in any string reaching a query fails deep in the
 * database as an unexpected error. The edge refuses it first, as the client's mistake it is.
 */
const NUL = '\u0000';

/**
 * Free-form JSON inputs (importRecords' `records`) are checked by the service that reads them, which
 * reports a NUL byte per record and field in its own `recordErrors`.
 */
const CHECKED_BY_OWNER = new Set(['JSON']);

/** The path of the first string (or object key) holding a NUL byte, or null. */
export function findNulByte(value: unknown, path: (string | number)[] = []): (string | number)[] | null {
  if (typeof value === 'string') return value.includes(NUL) ? path : null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findNulByte(value[i], [...path, i]);
      if (found) return found;
    }
    return null;
  }
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [key, child] of Object.entries(value)) {
      if (key.includes(NUL)) return [...path, key];
      const found = findNulByte(child, [...path, key]);
      if (found) return found;
    }
  }
  return null;
}

function nulByteError(where: string): GraphQLError {
  return new GraphQLError(`${where} contains a NUL byte (U+0000), which text fields cannot store`, {
    extensions: { code: 'BAD_USER_INPUT', field: where, http: { status: 400 } },
  });
}

/** The path of the first NUL byte in a value of `type`, skipping free-form JSON. */
function findInTyped(type: GraphQLInputType, value: unknown, path: (string | number)[]): (string | number)[] | null {
  if (value === null || value === undefined) return null;
  if (isNonNullType(type)) return findInTyped(type.ofType, value, path);
  if (isListType(type)) {
    if (!Array.isArray(value)) return findInTyped(type.ofType, value, path);
    for (let i = 0; i < value.length; i++) {
      const found = findInTyped(type.ofType, value[i], [...path, i]);
      if (found) return found;
    }
    return null;
  }
  if (isInputObjectType(type)) {
    if (typeof value !== 'object') return null;
    for (const field of Object.values(type.getFields())) {
      const found = findInTyped(field.type, (value as Record<string, unknown>)[field.name], [...path, field.name]);
      if (found) return found;
    }
    return null;
  }
  if (isScalarType(type) && CHECKED_BY_OWNER.has(type.name)) return null;
  return findNulByte(value, path);
}

/** Throws BAD_USER_INPUT when a variable or a string literal of the operation holds a NUL byte. */
export function assertNoNulBytes(schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode | null | undefined, variables: Record<string, unknown> | null | undefined): void {
  for (const definition of operation?.variableDefinitions ?? []) {
    const name = definition.variable.name.value;
    const type = typeFromAST(schema, definition.type) as GraphQLInputType | undefined;
    const found = type ? findInTyped(type, variables?.[name], [name]) : findNulByte(variables?.[name], [name]);
    if (found) throw nulByteError(found.join('.'));
  }
  let literal: GraphQLError | null = null;
  const typeInfo = new TypeInfo(schema);
  const skipsOwnerChecked = () => {
    const named = getNamedType(typeInfo.getInputType());
    return named && CHECKED_BY_OWNER.has(named.name) ? false : undefined;
  };
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      [Kind.ARGUMENT]: { enter: skipsOwnerChecked },
      [Kind.OBJECT_FIELD]: { enter: skipsOwnerChecked },
      [Kind.STRING]: (node) => {
        if (!literal && node.value.includes(NUL)) literal = nulByteError(`A string at line ${node.loc?.startToken.line ?? '?'}`);
      },
    }),
  );
  if (literal) throw literal;
}

/** Apollo plugin: the NUL check once the operation and its variables are known, before anything runs. */
export function nulBytePlugin(): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document, operation, request }) {
          assertNoNulBytes(schema, document, operation, request.variables);
        },
      };
    },
  };
}
