import { spawn, ChildProcess } from 'node:child_process';
import { startTestApp, createTestProject, TestApp, TestProject } from '../support/test-app';
import { PROJECT_ROOT } from '../support/shared-data';

/**
 * A real api process in production mode, abused by malformed requests: everything it logs
 * afterwards is one JSON object per line, and each refused request is one line without a stack.
 */
describe('logs under abuse (NODE_ENV=production)', () => {
  let app: TestApp;
  let lab: TestProject;
  let child: ChildProcess;
  let output = '';
  let graphqlUrl: string;

  beforeAll(async () => {
    // The in-process app gives a migrated database and a key; the process under test serves the same database.
    app = await startTestApp();
    lab = await createTestProject(app, 'log-lab');
    child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts', 'serve'], {
      cwd: PROJECT_ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production', DATABASE_URL: app.databaseUrl, PORT: '0', RUN_WORKER: 'false', SEED_DEMO: 'false', LOG_LEVEL: 'info', MAX_UPLOAD_FILES: '2' },
    });
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    const deadline = Date.now() + 120_000;
    while (!/ready in/.test(output)) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`api process did not start:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    graphqlUrl = JSON.parse(output.split('\n').find((l) => l.includes('"api listening"'))!).url;
  }, 150_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    await app?.stop();
  });

  it('writes one JSON line per refused request, at info or warn, with no stack', async () => {
    const from = output.length;
    const form = (map: string, files = 0) => {
      const f = new FormData();
      f.append('operations', JSON.stringify({ query: 'mutation($f: Upload!) { uploadImage(input: { file: $f }) { userErrors { code } } }', variables: { f: null } }));
      f.append('map', map);
      for (let i = 0; i < files; i++) f.append(String(i), new Blob([new Uint8Array([i])]), `${i}.jpg`);
      return f;
    };
    const json = { 'content-type': 'application/json' };
    const keyed = { ...json, authorization: `Bearer ${lab.keys.VIEWER}` };
    const abuse: [string, RequestInit][] = [
      ['malformed JSON, anonymous', { method: 'POST', headers: json, body: '{"query": "{ viewer' }],
      ['bad multipart map, anonymous', { method: 'POST', headers: { 'apollo-require-preflight': 'true' }, body: form('{ not json') }],
      ['too many files, anonymous', { method: 'POST', headers: { 'apollo-require-preflight': 'true' }, body: form(JSON.stringify({ 0: ['variables.f'], 1: ['variables.g'], 2: ['variables.h'] }), 3) }],
      ['syntax error', { method: 'POST', headers: keyed, body: JSON.stringify({ query: '{ viewer { role ' }) }],
      ['NUL byte', { method: 'POST', headers: keyed, body: JSON.stringify({ query: 'query($s: String) { images(first: 1, filter: { captionSearch: $s }) { totalCount } }', variables: { s: 'a\u0000' } }) }],
      ['no key', { method: 'POST', headers: json, body: JSON.stringify({ query: '{ viewer { role } }' }) }],
    ];
    const statuses: Record<string, number> = {};
    for (const [name, init] of abuse) {
      const res = await fetch(graphqlUrl, init);
      statuses[name] = res.status;
      await res.text();
    }
    expect(Object.values(statuses).every((s) => s >= 400 && s < 500)).toBe(true);
    // The access log line is written when the response finishes; give the last one a moment.
    await new Promise((r) => setTimeout(r, 300));

    const lines = output.slice(from).split('\n').filter((l) => l.length > 0);
    const notJson = lines.filter((l) => {
      try {
        return typeof JSON.parse(l) !== 'object';
      } catch {
        return true;
      }
    });
    expect(notJson).toEqual([]);
    const entries = lines.map((l) => JSON.parse(l));
    expect(entries.filter((e) => e.path === '/graphql')).toHaveLength(abuse.length);
    expect(entries.filter((e) => JSON.stringify(e).includes('stack') || !['info', 'warn'].includes(e.level))).toEqual([]);
  });
});
