import { GraphQLSchema, isObjectType } from 'graphql';
import { getMetadataStorage } from 'type-graphql';

type FieldMetadata = NonNullable<ReturnType<typeof getMetadataStorage>['objectTypes'][number]['fields']>[number];

/**
 * Gives the plain property fields of the object types graphql-js's default resolver (issue 14).
 *
 * type-graphql wraps every `@Field` without a resolver in its own function (`createBasicFieldResolver`:
 * a `resolverData` object and `applyMiddlewares` per call) so that `@Authorized` and `@UseMiddleware`
 * can run on it. A page of 100 candidates resolves thousands of such fields (`text`, `createdAt`,
 * `value`, every edge's `node`): with no roles and no middlewares the wrapper only reads
 * `root[name]`, which is what graphql-js does without a `resolve`.
 *
 * A field keeps type-graphql's resolver unless ALL of these hold, read from the same metadata
 * type-graphql built the schema from:
 * - no `@FieldResolver` for it (any resolver class, any kind: conservative);
 * - no roles (`@Authorized` on the field or its class) and no middlewares (on the field or its
 *   class). Global middlewares would apply to every field: `buildAppSchema` passes none, and must
 *   not call this if it ever does;
 * - no arguments (a field named differently from its property, `id` from `globalId`, gets a plain
 *   read of the property instead of the default resolver, which reads `source[info.fieldName]`);
 * - its property is not a method on the class (the default resolver would call it; type-graphql
 *   returns it as is). Getters are fine: both read them the same way.
 * Auth semantics are therefore unchanged: a field with `@Authorized` is never touched
 * (test/system/plain-field-resolvers.test.ts checks one still refuses).
 */
export function resolvePlainFieldsByDefault(schema: GraphQLSchema): { replaced: number } {
  const storage = getMetadataStorage();
  // Matched as type-graphql's generator matches them: the field's declaring class and method name.
  const withFieldResolver = new Map<Function | undefined, Set<string>>();
  for (const resolver of storage.fieldResolvers) {
    const target = resolver.getObjectType?.();
    if (!withFieldResolver.has(target)) withFieldResolver.set(target, new Set());
    withFieldResolver.get(target)!.add(resolver.methodName);
  }
  // A field resolver whose type is not known keeps every field of that name wrapped.
  const unknownTarget = withFieldResolver.get(undefined) ?? new Set<string>();
  const metadataOf = new Map(storage.objectTypes.map((o) => [o.target, o]));
  let replaced = 0;
  for (const objectType of storage.objectTypes) {
    const type = schema.getType(objectType.name);
    if (!isObjectType(type)) continue;
    const fields = type.getFields();
    // Its own fields first, then those it inherits (type-graphql copies a parent class's fields,
    // resolvers included, into the child type; an abstract base such as the entities' createdAt
    // is in no schema type of its own).
    const seen = new Set<string>();
    const declared: FieldMetadata[] = [];
    const interfaces: Function[] = [];
    for (let target: Function | null = objectType.target; target && target !== Function.prototype; target = Object.getPrototypeOf(target)) {
      declared.push(...(metadataOf.get(target)?.fields ?? []));
      interfaces.push(...(metadataOf.get(target)?.interfaceClasses ?? []));
    }
    // Then the fields of the interfaces it implements (Node's `id`), which type-graphql also copies in.
    for (const it of storage.interfaceTypes) if (interfaces.includes(it.target)) declared.push(...(it.fields ?? []));
    for (const field of declared) {
      if (seen.has(field.schemaName)) continue;
      seen.add(field.schemaName);
      const graphqlField = fields[field.schemaName];
      if (!graphqlField?.resolve) continue;
      if (field.roles !== undefined || (field.middlewares?.length ?? 0) > 0 || (field.params?.length ?? 0) > 0) continue;
      if (withFieldResolver.get(field.target)?.has(field.name) || unknownTarget.has(field.name)) continue;
      if (isMethod(field.target, field.name)) continue;
      // Same name: graphql-js's default resolver. Another GraphQL name than the property's: a
      // plain read of the property, exactly what type-graphql's wrapper returns without the wrapper.
      const property = field.name;
      graphqlField.resolve = field.name === field.schemaName ? undefined : (source: Record<string, unknown>) => source[property];
      replaced++;
    }
  }
  return { replaced };
}

/** True when the class (or a parent) declares `name` as a method, not a getter or a data property. */
function isMethod(target: Function, name: string): boolean {
  for (let proto = target.prototype; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    const descriptor = Object.getOwnPropertyDescriptor(proto, name);
    if (descriptor) return typeof descriptor.value === 'function';
  }
  return false;
}
