import { ArgsType, ArgumentValidationError, ClassType, Field, Int, ObjectType, registerEnumType, ValidatorFn } from 'type-graphql';
import { Max, Min, IsOptional, IsString, MaxLength, validate } from 'class-validator';
import { DataSource, ObjectLiteral, Repository, SelectQueryBuilder } from 'typeorm';
import { badInput } from './errors';
import { isUuid } from './ids';
import { PlainRows } from './plain-rows';

export const MAX_PAGE_SIZE = 100;

export enum SortDirection {
  ASC = 'ASC',
  DESC = 'DESC',
}
registerEnumType(SortDirection, { name: 'SortDirection', description: 'Sort order.', valuesConfig: { ASC: { description: 'Smallest (or oldest) first.' }, DESC: { description: 'Largest (or newest) first.' } } });

@ObjectType()
export class PageInfo {
  @Field() hasNextPage: boolean;
  @Field() hasPreviousPage: boolean;
  @Field(() => String, { nullable: true }) startCursor: string | null;
  @Field(() => String, { nullable: true }) endCursor: string | null;
}

@ArgsType()
export class PageArgs {
  @Field(() => Int, { description: `Page size, 1 to ${MAX_PAGE_SIZE}.` })
  @Min(1)
  @Max(MAX_PAGE_SIZE)
  first: number;

  @Field(() => String, { nullable: true, description: 'Cursor of the last edge already seen.' })
  @IsOptional()
  @IsString()
  @MaxLength(512)
  after?: string | null;
}

/** The key a row is sorted by: a timestamp or a number, with the row id as the tie-breaker. */
export type SortValue = Date | number;

export function encodeCursor(value: SortValue, id: string): string {
  const v = value instanceof Date ? { t: value.toISOString() } : { n: value };
  return Buffer.from(JSON.stringify([v, id]), 'utf8').toString('base64url');
}

/** What a list sorts by: cursors of another kind (from another list) are input errors, not SQL errors. */
export type CursorKind = 'time' | 'number';

export function decodeCursor(cursor: string, kind?: CursorKind): { value: SortValue; id: string } {
  try {
    const [v, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    // The id is compared with a uuid column: anything else would fail in Postgres, not here.
    if (typeof id !== 'string' || !isUuid(id)) throw new Error('id');
    if (kind !== 'number' && typeof v?.t === 'string' && !Number.isNaN(Date.parse(v.t))) return { value: new Date(v.t), id };
    if (kind !== 'time' && typeof v?.n === 'number' && Number.isFinite(v.n)) return { value: v.n, id };
  } catch {
    /* fall through to the input error */
  }
  throw badInput('Invalid cursor', 'after');
}

export interface Keyset {
  /** SQL expression of the sort key, e.g. `image.created_at`. */
  sortExpr: string;
  /** SQL expression of the tie-breaker, e.g. `image.id`. */
  idExpr: string;
  direction: SortDirection;
  /** Type of the sort key; default `time` (created_at). */
  kind?: CursorKind;
}

/** Adds keyset pagination: rows strictly after the cursor in sort order, one extra row to see if more follow. */
export function applyKeyset<T extends ObjectLiteral>(qb: SelectQueryBuilder<T>, keyset: Keyset, page: PageArgs): SelectQueryBuilder<T> {
  const { sortExpr, idExpr, direction } = keyset;
  if (page.after) {
    const { value, id } = decodeCursor(page.after, keyset.kind ?? 'time');
    const op = direction === SortDirection.DESC ? '<' : '>';
    qb.andWhere(`(${sortExpr}, ${idExpr}) ${op} (:cursorValue, :cursorId)`, { cursorValue: value, cursorId: id });
  }
  return qb.orderBy(sortExpr, direction).addOrderBy(idExpr, direction).limit(page.first + 1);
}

export interface ConnectionShape<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: PageInfo;
  totalCount(): Promise<number>;
}

/**
 * An edge whose cursor is encoded when a client reads it. Most queries ask for `node` only (and
 * `pageInfo.endCursor` once), while a page of 100 candidates with nested scores and preferences
 * holds some 350 edges: encoding every cursor up front (JSON, base64, a Date to ISO text) was
 * measurable CPU and garbage for nothing (issue 14).
 */
class LazyEdge<T> {
  private encoded: string | undefined;
  constructor(
    readonly node: T,
    private readonly sortKey: (row: T) => { value: SortValue; id: string },
  ) {}
  get cursor(): string {
    if (this.encoded === undefined) {
      const { value, id } = this.sortKey(this.node);
      this.encoded = encodeCursor(value, id);
    }
    return this.encoded;
  }
}

/** Builds a connection from `first + 1` fetched rows; cursors are encoded and the count runs only when a client asks for them. */
export function toConnection<T>(
  rows: T[],
  page: PageArgs,
  sortKey: (row: T) => { value: SortValue; id: string },
  count: () => Promise<number>,
): ConnectionShape<T> {
  const visible = rows.length > page.first ? rows.slice(0, page.first) : rows;
  const edges = visible.map((node) => new LazyEdge(node, sortKey));
  let counted: Promise<number> | undefined;
  return {
    edges,
    pageInfo: {
      hasNextPage: rows.length > page.first,
      hasPreviousPage: Boolean(page.after),
      get startCursor() {
        return edges.length ? edges[0].cursor : null;
      },
      get endCursor() {
        return edges.length ? edges[edges.length - 1].cursor : null;
      },
    },
    totalCount: () => (counted ??= count()),
  };
}

/**
 * Argument validation for the page arguments of a nested connection, as type-graphql does it
 * (class-validator, with the schema's settings) but once per distinct `first` rather than once per
 * parent: `scores(first: 5)` under a page of 100 candidates is the same question 100 times, and
 * type-graphql's own path loads class-validator and walks its metadata on every call. Only valid,
 * cursorless shapes are remembered (at most MAX_PAGE_SIZE of them); anything else is validated
 * each time and fails exactly as before.
 */
const validCursorlessPages = new Set<string>();
export const PAGE_ARGS_VALIDATED_ONCE: { validateFn: ValidatorFn } = {
  validateFn: async (value, type) => {
    if (value === null || typeof value !== 'object') return;
    const { first, after } = value as PageArgs;
    const key = after == null && typeof type === 'function' ? `${type.name}:${first}` : null;
    if (key !== null && validCursorlessPages.has(key)) return;
    const errors = await validate(value, { forbidUnknownValues: false, skipMissingProperties: true });
    if (errors.length) throw new ArgumentValidationError(errors);
    if (key !== null) validCursorlessPages.add(key);
  },
};

/** type-graphql classes for `<Name>Connection` and `<Name>Edge`. */
export function ConnectionType<T extends object>(nodeType: ClassType<T>, name: string) {
  @ObjectType(`${name}Edge`)
  class Edge {
    @Field() cursor: string;
    @Field(() => nodeType) node: T;
  }

  @ObjectType(`${name}Connection`)
  class Connection implements ConnectionShape<T> {
    @Field(() => [Edge]) edges: { cursor: string; node: T }[];
    @Field(() => PageInfo) pageInfo: PageInfo;
    countThunk: () => Promise<number>;

    @Field(() => Int, { description: 'Rows matching the filter, ignoring pagination.' })
    totalCount(): Promise<number> {
      return this.countThunk();
    }
  }
  return Connection;
}

export function connectionOf<C extends object>(ConnectionClass: new () => C, shape: ConnectionShape<unknown>): C {
  return Object.assign(new ConnectionClass(), { edges: shape.edges, pageInfo: shape.pageInfo, countThunk: shape.totalCount }) as C;
}

export interface ChildPageQuery {
  /** Table of the child rows, e.g. `candidates`. */
  table: string;
  /** Column holding the parent id, e.g. `image_id`. */
  parentColumn: string;
  projectId: string;
  parentIds: readonly string[];
  page: PageArgs;
  direction?: SortDirection;
}

/**
 * A page of children for many parents at once, in one statement: a window function numbers each
 * parent's children in (created_at, id) order and keeps `first + 1` of them. The children come back
 * as entities in page order (PlainRows, SQL written here rather than by the query builder: every
 * nested connection of a page runs it); group them by parent in the caller.
 */
export function childPages<T extends ObjectLiteral>(repo: Repository<T>, q: ChildPageQuery): Promise<T[]> {
  const direction = q.direction ?? SortDirection.DESC;
  const params: unknown[] = [q.projectId, [...q.parentIds], q.page.first + 1];
  let cursorCondition = '';
  if (q.page.after) {
    const { value, id } = decodeCursor(q.page.after, 'time');
    params.push(value, id);
    cursorCondition = `AND (created_at, id) ${direction === SortDirection.DESC ? '<' : '>'} ($4, $5)`;
  }
  const rows = PlainRows.of(repo.manager.connection, repo.target as new () => T);
  const sql = `SELECT ${rows.select('child')} FROM ${q.table} child WHERE child.id IN (
       SELECT ranked.id FROM (
         SELECT id, row_number() OVER (PARTITION BY ${q.parentColumn} ORDER BY created_at ${direction}, id ${direction}) AS rn
           FROM ${q.table}
          WHERE project_id = $1 AND ${q.parentColumn} = ANY($2::uuid[]) ${cursorCondition}
       ) ranked WHERE ranked.rn <= $3
     ) ORDER BY child.created_at ${direction}, child.id ${direction}`;
  return rows.query(sql, params, 'child');
}

/** How many children each parent has, in one grouped statement; zero where a parent has none. */
export async function countChildren(ds: DataSource, q: Omit<ChildPageQuery, 'page' | 'direction'>): Promise<number[]> {
  const rows: { key: string; count: string }[] = await ds.query(
    `SELECT ${q.parentColumn} AS key, count(*) AS count FROM ${q.table}
      WHERE project_id = $1 AND ${q.parentColumn} = ANY($2::uuid[]) GROUP BY ${q.parentColumn}`,
    [q.projectId, [...q.parentIds]],
  );
  const counts = new Map(rows.map((r) => [r.key, Number(r.count)]));
  return q.parentIds.map((id) => counts.get(id) ?? 0);
}
