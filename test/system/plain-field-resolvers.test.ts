import 'reflect-metadata';
import { graphql, GraphQLObjectType } from 'graphql';
import { Authorized, buildSchema, Field, ObjectType, Query, Resolver, UseMiddleware } from 'type-graphql';
import { resolvePlainFieldsByDefault } from '../../src/platform/plain-field-resolvers';
import { buildAppSchema } from '../../src/app/schema';
import { getMetadataStorage } from 'type-graphql';

/**
 * Issue 14: plain property fields resolve without type-graphql's per-field wrapper. The wrapper
 * stays wherever it does something: roles (`@Authorized`), middlewares, arguments, field resolvers.
 */

let middlewareCalls = 0;

@ObjectType()
class PlainFieldsProbe {
  @Field()
  open: string;

  @Field()
  @Authorized('ADMIN')
  secret: string;

  @Field()
  @UseMiddleware(async (_data, next) => {
    middlewareCalls++;
    return `${await next()}!`;
  })
  shouted: string;

  @Field({ name: 'renamed' })
  property: string;

  @Field()
  get computed(): string {
    return `${this.open}+`;
  }
}

@Resolver()
class PlainFieldsProbeResolver {
  @Query(() => PlainFieldsProbe)
  probe(): PlainFieldsProbe {
    return Object.assign(new PlainFieldsProbe(), { open: 'o', secret: 's', shouted: 'hi', property: 'p' });
  }
}

describe('plain property fields resolve without the type-graphql wrapper', () => {
  it('keeps @Authorized and middleware fields wrapped, and they still refuse and run', async () => {
    const schema = await buildSchema({
      resolvers: [PlainFieldsProbeResolver],
      authChecker: ({ context }) => (context as { admin: boolean }).admin,
      validate: false,
    });
    const { replaced } = resolvePlainFieldsByDefault(schema);
    expect(replaced).toBeGreaterThan(0);
    const fields = (schema.getType('PlainFieldsProbe') as GraphQLObjectType).getFields();
    expect(fields.open.resolve).toBeUndefined();
    expect(fields.computed.resolve).toBeDefined(); // a @Field getter is a field resolver to type-graphql: left as it is
    expect(fields.renamed.resolve).toBeDefined(); // a plain read of `property`
    expect(fields.secret.resolve).toBeDefined();
    expect(fields.shouted.resolve).toBeDefined();

    const query = '{ probe { open renamed computed shouted secret } }';
    const refused = await graphql({ schema, source: query, contextValue: { admin: false } });
    expect(refused.data).toBeNull(); // secret is non-null: the refusal nulls the parent
    expect(refused.errors?.map((e) => e.path?.join('.'))).toEqual(['probe.secret']);

    middlewareCalls = 0;
    const allowed = await graphql({ schema, source: query, contextValue: { admin: true } });
    expect(allowed.errors).toBeUndefined();
    expect(allowed.data).toEqual({ probe: { open: 'o', renamed: 'p', computed: 'o+', shouted: 'hi!', secret: 's' } });
    expect(middlewareCalls).toBe(1);
  });

  it('in the app schema, only fields without roles, middlewares, arguments or field resolvers lose the wrapper', async () => {
    const schema = await buildAppSchema(null);
    const candidate = (schema.getType('Candidate') as GraphQLObjectType).getFields();
    expect(candidate.createdAt.resolve).toBeUndefined();
    expect(candidate.scores.resolve).toBeDefined(); // a field resolver with arguments
    const storage = getMetadataStorage();
    for (const objectType of storage.objectTypes) {
      const type = schema.getType(objectType.name);
      if (!(type instanceof GraphQLObjectType)) continue;
      for (const field of objectType.fields ?? []) {
        const guarded = field.roles !== undefined || (field.middlewares?.length ?? 0) > 0 || (field.params?.length ?? 0) > 0;
        if (guarded && type.getFields()[field.schemaName]) expect([objectType.name, field.schemaName, typeof type.getFields()[field.schemaName].resolve]).toEqual([objectType.name, field.schemaName, 'function']);
      }
    }
  });
});
