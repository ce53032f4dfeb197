import { DataSource, EntityMetadata, ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata';
import { DriverUtils } from 'typeorm/driver/DriverUtils';
import { ApplyValueTransformers } from 'typeorm/util/ApplyValueTransformers';

/**
 * Entities from the rows of a query builder, without TypeORM's result transformer.
 *
 * `getMany()` hands every row to `RawSqlResultsToEntityTransformer`, which groups rows by primary
 * key, looks up each column's alias and runs the driver's generic hydration per value: on a page
 * of 100 candidates with nested images, scores and preferences that was a tenth of the request's
 * CPU and much of its garbage (issue 14's profile). The hot lists read a single alias with no
 * joined selects, so none of that generality is needed: here each entity's columns are resolved
 * once into (row key, property, conversion) triples and a row becomes an entity with one loop.
 *
 * The result is what `getMany()` returns: an object of the entity's class (so getters such as
 * `globalId` and type-graphql's `instanceof` checks work), created without its constructor as
 * TypeORM does for loaded rows, with every selected column converted as the Postgres driver
 * would (enum arrays, which pg returns as text, and value transformers such as `costUsd`'s).
 * Column types this reader does not know how to convert are refused when it is built, so a new
 * column type fails loudly instead of hydrating differently; test/system/plain-rows.test.ts
 * compares it with `getMany()` for every entity that uses it.
 */
export class PlainRows<T extends ObjectLiteral> {
  private readonly byAlias = new Map<string, ColumnReader[]>();
  private readonly selectLists = new Map<string, string>();

  private constructor(
    private readonly ds: DataSource,
    private readonly metadata: EntityMetadata,
  ) {
    for (const column of this.columns()) converterFor(column); // refuses unknown types now, not on the first request
  }

  private static readonly cache = new WeakMap<DataSource, Map<Function | string, PlainRows<ObjectLiteral>>>();

  /** The reader of `entity` for this data source, built once. */
  static of<T extends ObjectLiteral>(ds: DataSource, entity: new () => T): PlainRows<T> {
    let readers = PlainRows.cache.get(ds);
    if (!readers) PlainRows.cache.set(ds, (readers = new Map()));
    let reader = readers.get(entity);
    if (!reader) readers.set(entity, (reader = new PlainRows(ds, ds.getMetadata(entity))));
    return reader as unknown as PlainRows<T>;
  }

  /** `qb.getMany()` for a query builder that selects one alias (its main one) and joins nothing into it. */
  async getMany(qb: SelectQueryBuilder<T>): Promise<T[]> {
    return (await this.getRawAndEntities(qb)).entities;
  }

  /** `qb.getRawAndEntities()` under the same condition: the raw rows keep extra selected expressions. */
  async getRawAndEntities(qb: SelectQueryBuilder<T>): Promise<{ raw: Record<string, unknown>[]; entities: T[] }> {
    const { mainAlias, joinAttributes } = qb.expressionMap;
    if (!mainAlias || mainAlias.metadata !== this.metadata) throw new Error(`PlainRows<${this.metadata.name}> given a query of another entity`);
    // A join TypeORM would map into the entity (a relation or mapTo… selected with it) is beyond this
    // reader; a plain join whose columns are only addSelect-ed (the score sort's `sort.value`) is not.
    if (joinAttributes.some((join) => join.isSelected && (join.relation || join.mapToProperty))) throw new Error('PlainRows reads one alias; use getMany() for joined selects');
    const [sql, parameters] = qb.getQueryAndParameters();
    const raw: Record<string, unknown>[] = await this.ds.query(sql, parameters);
    return { raw, entities: this.fromRows(raw, mainAlias.name) };
  }

  /**
   * The select list of every column under `alias`, named as a query builder names them
   * (`"i"."caption" AS "i_caption"`): for hot statements written as SQL, which skip the query
   * builder's SQL generation on every call (use with `query`).
   */
  select(alias: string): string {
    let list = this.selectLists.get(alias);
    if (list === undefined) {
      list = this.readersFor(alias)
        .map((r) => `"${alias}"."${r.column}" AS "${r.key}"`)
        .join(', ');
      this.selectLists.set(alias, list);
    }
    return list;
  }

  /** Runs SQL whose select list came from `select(alias)` (more columns may follow) and returns the entities. */
  async query(sql: string, parameters: unknown[], alias: string): Promise<T[]> {
    return this.fromRows(await this.ds.query(sql, parameters), alias);
  }

  /** Entities from rows whose columns are named `<alias>_<column>`, as a query builder selects them. */
  fromRows(rows: readonly Record<string, unknown>[], alias: string): T[] {
    const readers = this.readersFor(alias);
    const proto = this.metadata.target instanceof Function ? this.metadata.target.prototype : Object.prototype;
    const entities = new Array<T>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i];
      const entity = Object.create(proto);
      for (const { key, property, convert } of readers) {
        const value = row[key];
        if (value !== undefined) entity[property] = convert && value !== null ? convert(value) : value;
      }
      entities[i] = entity;
    }
    return entities;
  }

  private readersFor(alias: string): ColumnReader[] {
    let readers = this.byAlias.get(alias);
    if (!readers) {
      readers = this.columns().map((column) => ({
        key: DriverUtils.buildAlias(this.ds.driver, undefined, alias, column.databaseName),
        column: column.databaseName,
        property: column.propertyName,
        convert: converterFor(column),
      }));
      this.byAlias.set(alias, readers);
    }
    return readers;
  }

  private columns(): ColumnMetadata[] {
    return this.metadata.columns.filter((c) => !c.isVirtual && !c.isVirtualProperty && c.isSelect && !c.embeddedMetadata);
  }
}

interface ColumnReader {
  key: string;
  column: string;
  property: string;
  /** Applied to non-null values; null is kept unless the column has a transformer (see converterFor). */
  convert: ((value: unknown) => unknown) | null;
}

/** Types pg already returns as the entity holds them (Date, number, string, boolean, parsed json, text/uuid arrays). */
const AS_RETURNED = new Set<unknown>(['uuid', 'text', 'varchar', 'character varying', 'char', 'int', 'integer', 'int4', 'smallint', 'double precision', 'float8', 'real', 'boolean', 'bool', 'jsonb', 'json', 'numeric', 'decimal', 'bigint', 'timestamptz', 'timestamp with time zone', 'bytea', String, Boolean, Date]);

/** The conversion of one column's value, as PostgresDriver.prepareHydratedValue does it for the types we use; null when none. */
function converterFor(column: ColumnMetadata): ((value: unknown) => unknown) | null {
  let base: ((value: unknown) => unknown) | null;
  if (column.type === 'enum') {
    if ((column.enum ?? []).some((v) => typeof v === 'number')) throw new Error(`PlainRows: numeric enum column ${column.entityMetadata.name}.${column.propertyName} is not supported`);
    base = column.isArray ? parseEnumArray : null;
  } else if (column.type === Boolean) {
    base = (v) => Boolean(v);
  } else if (AS_RETURNED.has(column.type)) {
    base = null;
  } else {
    throw new Error(`PlainRows: column type ${String(column.type)} of ${column.entityMetadata.name}.${column.propertyName} is not supported`);
  }
  const transformer = column.transformer;
  if (!transformer) return base;
  if (column.isNullable) throw new Error(`PlainRows: transformer on nullable column ${column.entityMetadata.name}.${column.propertyName} is not supported (TypeORM applies it to null too)`);
  return (value) => ApplyValueTransformers.transformFrom(transformer, base ? base(value) : value);
}

/** pg returns arrays of a user-defined enum as their text form, `{CT,"CHEST_XRAY"}`; TypeORM's parsing of it. */
function parseEnumArray(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  if (value === '{}') return [];
  return value
    .slice(1, -1)
    .split(',')
    .map((item) => (item.startsWith('"') && item.endsWith('"') ? item.slice(1, -1) : item).replaceAll(/\\(\\|")/g, '$1'));
}
