import { startTestApp, createTestProject, TestApp, TestProject } from '../support/test-app';
import { gql, errorCodes } from '../support/graphql-client';
import { Role } from '../../src/modules/projects/role';

describe('authentication and roles', () => {
  let app: TestApp;
  let lab: TestProject;

  beforeAll(async () => {
    app = await startTestApp();
    lab = await createTestProject(app, 'auth-lab');
  });
  afterAll(() => app.stop());

  it('answers health without a key, and readiness once migrations are applied', async () => {
    const health = await fetch(`${app.url}/healthz`);
    expect(health.status).toBe(200);
    const ready = await fetch(`${app.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', database: 'ok' });
  });

  it.each([
    ['no header', null],
    ['an unknown key', 'bmv_not-a-real-key'],
  ])('rejects %s with UNAUTHENTICATED and HTTP 401', async (_label, key) => {
    const res = await gql(app.graphqlUrl, key, '{ viewer { role } }');
    expect(res.status).toBe(401);
    expect(errorCodes(res)).toEqual(['UNAUTHENTICATED']);
    expect(res.data ?? null).toBeNull();
  });

  it('tells each key its own user, project and role', async () => {
    for (const role of Object.values(Role)) {
      const res = await gql(app.graphqlUrl, lab.keys[role], '{ viewer { role user { email } project { slug } } }');
      expect(res.errors).toBeUndefined();
      expect(res.data!.viewer).toEqual({ role, user: { email: `${role.toLowerCase()}@auth-lab.test` }, project: { slug: 'auth-lab' } });
    }
  });

  it('lets an owner create a key that works once shown, and revoke it so it stops working', async () => {
    const created = await gql(app.graphqlUrl, lab.keys.OWNER, `mutation { createApiKey(input: { name: "notebook" }) { secret apiKey { id name prefix revokedAt } userErrors { code } } }`);
    const { secret, apiKey } = created.data!.createApiKey;
    expect(secret).toMatch(/^bmv_/);
    expect(secret.startsWith(apiKey.prefix)).toBe(true);
    expect((await gql(app.graphqlUrl, secret, '{ viewer { role } }')).data!.viewer.role).toBe('OWNER');

    const listed = await gql(app.graphqlUrl, lab.keys.OWNER, '{ viewer { project { apiKeys(first: 100) { totalCount edges { node { name lastUsedAt } } } } } }');
    const keys = listed.data!.viewer.project.apiKeys;
    expect(keys.totalCount).toBe(5);
    expect(keys.edges.find((e: any) => e.node.name === 'notebook').node.lastUsedAt).not.toBeNull();

    const revoked = await gql(app.graphqlUrl, lab.keys.OWNER, `mutation($id: ID!) { revokeApiKey(input: { id: $id }) { apiKey { revokedAt } userErrors { code } } }`, { id: apiKey.id });
    expect(revoked.data!.revokeApiKey.apiKey.revokedAt).not.toBeNull();
    const after = await gql(app.graphqlUrl, secret, '{ viewer { role } }');
    expect(errorCodes(after)).toEqual(['UNAUTHENTICATED']);
  });

  it('stores only a hash of each key', async () => {
    const rows: { secret_hash: string }[] = await app.ds.query('SELECT secret_hash FROM api_keys');
    for (const key of Object.values(lab.keys)) {
      expect(rows.some((r) => r.secret_hash.includes(key) || r.secret_hash === key)).toBe(false);
    }
    expect(rows.every((r) => /^[0-9a-f]{64}$/.test(r.secret_hash))).toBe(true);
  });

  it.each([
    ['VIEWER', 'mutation { createApiKey(input: { name: "x" }) { secret userErrors { code } } }'],
    ['CURATOR', 'mutation { createApiKey(input: { name: "x" }) { secret userErrors { code } } }'],
    ['CURATOR', 'mutation { addMember(input: { email: "a@b.test", displayName: "A", role: VIEWER }) { userErrors { code } } }'],
    ['CLINICIAN', 'mutation { importRecords(input: { records: [] }) { userErrors { code } } }'],
    ['VIEWER', 'mutation { setDemonstrationActive(input: { id: "RGVtb25zdHJhdGlvbjowMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDA", active: false }) { userErrors { code } } }'],
    ['CLINICIAN', '{ viewer { project { apiKeys(first: 5) { totalCount } } } }'],
  ])('refuses %s: %s', async (role, query) => {
    const res = await gql(app.graphqlUrl, lab.keys[role as Role], query);
    expect(errorCodes(res)).toEqual(['FORBIDDEN']);
  });

  it('lets an owner add a member and change their role, but not their own', async () => {
    const add = await gql(app.graphqlUrl, lab.keys.OWNER, 'mutation { addMember(input: { email: "New@Lab.test", displayName: "New", role: CLINICIAN }) { membership { role user { email } } userErrors { code } } }');
    expect(add.data!.addMember).toEqual({ membership: { role: 'CLINICIAN', user: { email: 'new@lab.test' } }, userErrors: [] });
    const promote = await gql(app.graphqlUrl, lab.keys.OWNER, 'mutation { addMember(input: { email: "new@lab.test", displayName: "New", role: CURATOR }) { membership { role } } }');
    expect(promote.data!.addMember.membership.role).toBe('CURATOR');
    const self = await gql(app.graphqlUrl, lab.keys.OWNER, 'mutation { addMember(input: { email: "owner@auth-lab.test", displayName: "Me", role: VIEWER }) { membership { role } userErrors { code field } } }');
    expect(self.data!.addMember).toEqual({ membership: null, userErrors: [{ code: 'CONFLICT', field: ['email'] }] });
  });

  it('rejects invalid input with userErrors on the failing fields', async () => {
    const res = await gql(app.graphqlUrl, lab.keys.OWNER, 'mutation { addMember(input: { email: "not-an-email", displayName: "", role: VIEWER }) { membership { role } userErrors { code field } } }');
    expect(res.errors).toBeUndefined();
    expect(res.data!.addMember.membership).toBeNull();
    const fields = res.data!.addMember.userErrors.map((e: any) => e.field.join('.')).sort();
    expect(fields).toEqual(['input.displayName', 'input.email']);
  });

  it('rejects unknown fields and invalid enums before any resolver runs', async () => {
    const unknownField = await gql(app.graphqlUrl, lab.keys.OWNER, 'mutation { addMember(input: { email: "x@y.test", displayName: "X", role: VIEWER, admin: true }) { userErrors { code } } }');
    expect(unknownField.status).toBe(400);
    expect(errorCodes(unknownField)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    const badEnum = await gql(app.graphqlUrl, lab.keys.OWNER, 'mutation { addMember(input: { email: "x@y.test", displayName: "X", role: ADMIN }) { userErrors { code } } }');
    expect(errorCodes(badEnum)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    const members: { count: string }[] = await app.ds.query(`SELECT count(*) FROM users WHERE email = 'x@y.test'`);
    expect(Number(members[0].count)).toBe(0);
  });
});
