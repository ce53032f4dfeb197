import type { Pool } from 'pg';

/**
 * Rows of a query in Postgres's binary COPY format, each field as its raw bytes: a `bytea` arrives
 * as the bytes themselves, not as hex text that the driver decodes (`\x` + two characters a byte:
 * about 1.6 ms of the main thread per 93 KiB image, issue 14).
 *
 * Why COPY and not `binary: true` on a query: node-postgres 8 decodes every DataRow field as UTF-8
 * text and re-encodes it when binary results are asked for, which corrupts any byte sequence that
 * is not UTF-8 (brianc/node-postgres#3495, open). CopyData messages reach a query object as raw
 * Buffers, which is how pg-copy-streams works; this is its copy-out half, reduced to collecting the
 * whole result (callers read a bounded batch) and parsing the binary format:
 * https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4 (header, then per tuple an
 * int16 field count and per field an int32 length, -1 for NULL, and the bytes; -1 ends the data).
 *
 * COPY takes no bind parameters: callers put values in as literals with `quoteLiteral`.
 */
export async function copyOutBinary(pool: Pool, selectSql: string): Promise<(Buffer | null)[][]> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    const data = await new Promise<Buffer>((resolve, reject) => client.query(new CopyOut(`COPY (${selectSql}) TO STDOUT (FORMAT binary)`, resolve, reject)));
    return parseBinaryCopy(data);
  } catch (error) {
    // A statement error leaves the connection usable (Postgres answered ReadyForQuery); a parse or
    // connection error may not, so the connection is not reused then.
    if (!(error as { severity?: string }).severity) broken = error as Error;
    throw error;
  } finally {
    client.release(broken);
  }
}

/** A SQL string literal (standard_conforming_strings is on, Postgres's default since 9.1). */
export const quoteLiteral = (value: string): string => {
  if (value.includes('\0')) throw new Error('a SQL literal cannot hold NUL');
  return `'${value.replace(/'/g, "''")}'`;
};

/**
 * A node-postgres "submittable": the client hands it the connection when it is its turn and the
 * backend's messages after that, until ReadyForQuery.
 */
class CopyOut {
  private readonly chunks: Buffer[] = [];
  private failed = false;

  constructor(
    private readonly text: string,
    private readonly resolve: (data: Buffer) => void,
    private readonly reject: (error: Error) => void,
  ) {}

  submit(connection: { query(text: string): void }): void {
    connection.query(this.text);
  }

  handleCopyData(message: { chunk: Buffer }): void {
    // The chunk is a view of the parser's buffer, which it reuses for later messages: copy it now.
    this.chunks.push(Buffer.from(message.chunk));
  }

  /** An error message from Postgres (ReadyForQuery follows) or a broken connection (nothing follows). */
  handleError(error: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.reject(error);
  }

  handleReadyForQuery(): void {
    if (!this.failed) this.resolve(Buffer.concat(this.chunks));
  }

  handleCommandComplete(): void {}
  handleRowDescription(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleDataRow(): void {
    this.handleError(new Error('COPY TO STDOUT answered rows'));
  }
  handleCopyInResponse(): void {
    this.handleError(new Error('COPY TO STDOUT asked for input'));
  }
}

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/** The binary COPY format: fields are views of `data` (no copy). */
export function parseBinaryCopy(data: Buffer): (Buffer | null)[][] {
  if (data.length < 19 || !data.subarray(0, 11).equals(SIGNATURE)) throw new Error('not a binary COPY stream');
  let offset = 11 + 4; // signature, flags
  offset += 4 + data.readUInt32BE(offset); // header extension
  const rows: (Buffer | null)[][] = [];
  for (;;) {
    const fields = data.readInt16BE(offset);
    offset += 2;
    if (fields === -1) return rows;
    const row: (Buffer | null)[] = new Array(fields);
    for (let i = 0; i < fields; i++) {
      const length = data.readInt32BE(offset);
      offset += 4;
      if (length === -1) {
        row[i] = null;
        continue;
      }
      if (offset + length > data.length) throw new Error('binary COPY stream cut short');
      row[i] = data.subarray(offset, offset + length);
      offset += length;
    }
    rows.push(row);
  }
}
