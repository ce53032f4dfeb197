import { Client } from 'graphql-ws';
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { WsClients } from '../support/ws-client';
import { StatementCounter } from '../../src/platform/db';
import { RunEventsPublisher } from '../../src/platform/pubsub';
import { toGlobalId } from '../../src/platform/ids';
import { Run, RunKind, RunStatus } from '../../src/modules/runs/run.entity';

const BY_VIEWER = `subscription($id: ID!) { runUpdated(id: $id) { id done total } }`;
const OTHER_SELECTION = `subscription($id: ID!) { runUpdated(id: $id) { id status done createdBy { email } } }`;

/** Everything one subscriber received, in order, and how its subscription ended. */
class Received {
  readonly data: any[] = [];
  readonly errors: any[] = [];
  ended: 'complete' | 'error' | null = null;

  constructor(client: Client, query: string, runId: string) {
    client.subscribe(
      { query, variables: { id: runId } },
      {
        next: (result: any) => (result.data?.runUpdated ? this.data.push(result.data.runUpdated) : this.errors.push(...(result.errors ?? [result]))),
        error: (error) => {
          this.ended = 'error';
          this.errors.push(...(Array.isArray(error) ? error : [error]));
        },
        complete: () => (this.ended = 'complete'),
      },
    );
  }
}

async function until(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Many subscribers of one run in one api process: each event is read from the database once for
 * all of them and executed once per kind of subscriber, and still each gets its own selection, its
 * own project's runs only.
 */
describe('runUpdated fan-out to many subscribers', () => {
  let app: TestApp;
  let labA: TestProject;
  let labB: TestProject;
  const clients = new WsClients();

  beforeAll(async () => {
    app = await startTestApp({ RATE_LIMIT_PER_MINUTE: '0' });
    labA = await createTestProject(app, 'fan-lab-a');
    labB = await createTestProject(app, 'fan-lab-b');
  });

  afterAll(async () => {
    StatementCounter.capture = null;
    await clients.disposeAll();
    await app?.stop();
  });

  it('reads the run once per event for all subscribers, gives each its own selection and keeps other projects out', async () => {
    const saved = await app.ds.getRepository(Run).save({ projectId: labA.id, kind: RunKind.SCORING, status: RunStatus.RUNNING, params: {}, total: 3, createdById: labA.userIds.CURATOR, startedAt: new Date() });
    const runId = toGlobalId('Run', saved.id);
    const viewers = Array.from({ length: 12 }, () => new Received(clients.open(app, labA.keys.VIEWER), BY_VIEWER, runId));
    const clinicians = Array.from({ length: 4 }, () => new Received(clients.open(app, labA.keys.CLINICIAN), OTHER_SELECTION, runId));
    const outsider = new Received(clients.open(app, labB.keys.OWNER), BY_VIEWER, runId);
    const labA_ = [...viewers, ...clinicians];
    await until('every subscriber of the project has the initial state', () => labA_.every((r) => r.data.length === 1));
    await until('the other project is refused', () => outsider.ended !== null || outsider.errors.length > 0);

    const runReads: string[] = [];
    StatementCounter.capture = (query) => {
      if (/^\s*SELECT[\s\S]*\bFROM "runs"/i.test(query)) runReads.push(query);
    };
    const publisher = new RunEventsPublisher(app.ds, 0);
    await app.ds.query(`UPDATE runs SET done = done + 1 WHERE id = $1`, [saved.id]);
    await publisher.flush(saved.id);
    await until('every subscriber has the change', () => labA_.every((r) => r.data.length === 2));
    StatementCounter.capture = null;
    // 16 subscribers in two kinds (role and selection differ): one read of the run between them.
    expect(runReads.length).toBe(1);

    await app.ds.query(`UPDATE runs SET done = 3, status = 'SUCCEEDED', finished_at = now() WHERE id = $1`, [saved.id]);
    await publisher.flush(saved.id);
    await until('every subscription completes', () => labA_.every((r) => r.ended !== null));

    for (const r of viewers) {
      expect(r.errors).toEqual([]);
      expect(r.ended).toBe('complete');
      expect(r.data).toEqual([
        { id: runId, done: 0, total: 3 },
        { id: runId, done: 1, total: 3 },
        { id: runId, done: 3, total: 3 },
      ]);
    }
    for (const r of clinicians) {
      expect(r.errors).toEqual([]);
      expect(r.ended).toBe('complete');
      const createdBy = { email: 'curator@fan-lab-a.test' };
      expect(r.data).toEqual([
        { id: runId, status: 'RUNNING', done: 0, createdBy },
        { id: runId, status: 'RUNNING', done: 1, createdBy },
        { id: runId, status: 'SUCCEEDED', done: 3, createdBy },
      ]);
    }
    // Another project's key never sees the run, not even once the events start flowing.
    expect(outsider.data).toEqual([]);
    expect(outsider.errors.map((e) => e.extensions?.code)).toEqual(['NOT_FOUND']);
  });
});
