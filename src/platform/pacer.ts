import { DataSource } from 'typeorm';

export interface PaceLimit {
  /** e.g. `global:requests`, `run:<id>:tokens`. */
  key: string;
  perMinute: number;
  /** Units this call spends: 1 for a request, the estimated tokens for a token budget. */
  weight: number;
}

/**
 * Spaces calls so that no limit is ever exceeded, across every worker process: the generic cell
 * rate algorithm with no burst allowance, the theoretical arrival time kept per key in Postgres.
 * A reservation always succeeds and says how long the caller must wait before it may start.
 */
export class Pacer {
  constructor(private readonly ds: DataSource) {}

  /** Reserves a slot under every limit at once and returns the milliseconds to wait. */
  async reserve(limits: PaceLimit[]): Promise<number> {
    const active = limits.filter((l) => l.perMinute > 0 && l.weight > 0).sort((a, b) => a.key.localeCompare(b.key));
    if (!active.length) return 0;
    const rows: { wait_ms: number }[] = await this.ds.query(
      `INSERT INTO llm_pacing AS p (key, tat, step)
       SELECT k, clock_timestamp() + make_interval(secs => s / 1000.0), make_interval(secs => s / 1000.0)
       FROM unnest($1::text[], $2::float8[]) AS t(k, s)
       ON CONFLICT (key) DO UPDATE SET tat = greatest(p.tat, clock_timestamp()) + EXCLUDED.step, step = EXCLUDED.step
       RETURNING extract(epoch FROM (p.tat - p.step - clock_timestamp())) * 1000 AS wait_ms`,
      [active.map((l) => l.key), active.map(stepMs)],
    );
    return Math.max(0, ...rows.map((r) => Number(r.wait_ms)));
  }

  /** Moves a key's schedule by what a call really spent against what it reserved (tokens). */
  async adjust(limit: PaceLimit, actualWeight: number): Promise<void> {
    if (limit.perMinute <= 0 || actualWeight === limit.weight) return;
    const deltaMs = ((actualWeight - limit.weight) * 60_000) / limit.perMinute;
    await this.ds.query(`UPDATE llm_pacing SET tat = tat + make_interval(secs => $2 / 1000.0) WHERE key = $1`, [limit.key, deltaMs]);
  }

  async forget(prefix: string): Promise<void> {
    await this.ds.query(`DELETE FROM llm_pacing WHERE key LIKE $1`, [`${prefix}%`]);
  }
}

const stepMs = (l: PaceLimit) => (l.weight * 60_000) / l.perMinute;
