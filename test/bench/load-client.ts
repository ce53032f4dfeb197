/**
 * The open-loop client of bench:load, in a process of its own so that its work never competes with
 * the api's event loop. It receives a LoadPlan from its parent, offers each rate for the given
 * time, and sends back one LoadPhaseResult per rate.
 *
 * Open loop: request i of a phase is due at start + i / rate and leaves then, however many are
 * still in flight (up to maxInFlight; beyond it a request is counted as not sent, `shed`). Its
 * latency runs from when it was due to when its body has arrived, so time spent queued for a free
 * connection or behind a slow server counts.
 */
import http from 'node:http';

export interface LoadPlan {
  url: string;
  key: string;
  query: string;
  /** Variables of the requests, used in turn. */
  variables: Record<string, unknown>[];
  rates: number[];
  durationS: number;
  maxInFlight: number;
}

export interface LoadPhaseResult {
  offered: number;
  durationS: number;
  sent: number;
  completed: number;
  /** Responses that arrived within the phase's duration, per second: the rate the api sustained. */
  completedPerSecond: number;
  errors: number;
  shed: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

const DRAIN_TIMEOUT_MS = 30_000;

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function runPhase(plan: LoadPlan, rate: number, agent: http.Agent): Promise<LoadPhaseResult> {
  const url = new URL(plan.url);
  const bodies = plan.variables.map((variables) => Buffer.from(JSON.stringify({ query: plan.query, variables })));
  const latencies: number[] = [];
  let sent = 0;
  let shed = 0;
  let errors = 0;
  let inFlight = 0;
  let completedInWindow = 0;
  const start = performance.now();
  const end = start + plan.durationS * 1000;
  let drained: (() => void) | null = null;

  const send = (due: number) => {
    inFlight++;
    sent++;
    const body = bodies[sent % bodies.length];
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length, authorization: `Bearer ${plan.key}` } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const now = performance.now();
          let ok = res.statusCode === 200;
          if (ok) {
            try {
              const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data?: unknown; errors?: unknown };
              ok = Boolean(parsed.data) && !parsed.errors;
            } catch {
              ok = false;
            }
          }
          if (ok) {
            latencies.push(now - due);
            if (now <= end) completedInWindow++;
          } else errors++;
          done();
        });
      },
    );
    req.on('error', () => {
      errors++;
      done();
    });
    req.end(body);
  };
  const done = () => {
    inFlight--;
    if (inFlight === 0 && drained) drained();
  };

  // A timer every millisecond sends whatever has fallen due; requests keep their due time.
  await new Promise<void>((resolve) => {
    let i = 0;
    const tick = () => {
      const now = performance.now();
      while (i < rate * plan.durationS && start + (i * 1000) / rate <= now) {
        const due = start + (i * 1000) / rate;
        i++;
        if (inFlight >= plan.maxInFlight) shed++;
        else send(due);
      }
      if (now >= end) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  if (inFlight > 0) {
    await Promise.race([new Promise<void>((resolve) => (drained = resolve)), new Promise((resolve) => setTimeout(resolve, DRAIN_TIMEOUT_MS))]);
    errors += inFlight; // still unanswered after the drain timeout
  }
  latencies.sort((a, b) => a - b);
  return {
    offered: rate,
    durationS: plan.durationS,
    sent,
    completed: latencies.length,
    completedPerSecond: completedInWindow / plan.durationS,
    errors,
    shed,
    p50: percentile(latencies, 50),
    p90: percentile(latencies, 90),
    p99: percentile(latencies, 99),
    max: latencies[latencies.length - 1] ?? NaN,
  };
}

process.once('message', async (plan: LoadPlan) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  for (const rate of plan.rates) {
    process.send!({ kind: 'phase-start' });
    const result = await runPhase(plan, rate, agent);
    process.send!({ kind: 'phase', result });
    await new Promise((resolve) => setTimeout(resolve, 2000)); // let the api settle between rates
  }
  agent.destroy();
  process.send!({ kind: 'done' }, () => process.exit(0));
});
