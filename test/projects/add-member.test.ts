import { startTestApp, createTestProject, TestApp, TestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';

const ADD = `mutation($input: AddMemberInput!) { addMember(input: $input) {
  membership { role createdAt updatedAt user { email displayName createdAt updatedAt } }
  userErrors { code field }
} }`;

/** addMember answers the same way whether the email belongs to a user of another project or to nobody. */
describe('addMember reveals nothing about other projects', () => {
  let app: TestApp;
  let a: TestProject;
  let b: TestProject;

  beforeAll(async () => {
    app = await startTestApp();
    a = await createTestProject(app, 'probe-a');
    b = await createTestProject(app, 'probe-b');
    // A's clinician has been a user for a while, under A's name for them.
    await app.ds.query(`UPDATE users SET created_at = now() - interval '30 days', updated_at = now() - interval '30 days' WHERE id = $1`, [a.userIds.CLINICIAN]);
  });
  afterAll(() => app.stop());

  /** The answer with the only input-dependent part (the email) taken out. */
  async function add(email: string) {
    const res = await gql(app.graphqlUrl, b.keys.OWNER, ADD, { input: { email, displayName: 'Probe', role: 'VIEWER' } });
    expect(res.errors).toBeUndefined();
    const { membership, userErrors } = res.data!.addMember;
    expect(membership.user.email).toBe(email);
    return {
      userErrors,
      role: membership.role,
      displayName: membership.user.displayName,
      userTimesAreTheMembership: membership.user.createdAt === membership.createdAt && membership.user.updatedAt === membership.updatedAt,
    };
  }

  it("gives an existing user of another project the same answer as a new email, and leaves A's view of them as it was", async () => {
    const existing = await add('clinician@probe-a.test');
    const unknown = await add('nobody@probe-elsewhere.test');
    expect(existing).toEqual(unknown);
    expect(existing).toEqual({ userErrors: [], role: 'VIEWER', displayName: 'Probe', userTimesAreTheMembership: true });

    // Later reads in B agree with the answer: B knows the member by the name B gave.
    const inB = await gql(app.graphqlUrl, b.keys.OWNER, '{ viewer { project { members(first: 20) { edges { node { user { email displayName } } } } } } }');
    const names = Object.fromEntries(inB.data!.viewer.project.members.edges.map((e: any) => [e.node.user.email, e.node.user.displayName]));
    expect(names['clinician@probe-a.test']).toBe('Probe');
    expect(names['nobody@probe-elsewhere.test']).toBe('Probe');

    // A still sees its clinician under its own name, with the user's role there unchanged.
    const inA = await gql(app.graphqlUrl, a.keys.CLINICIAN, '{ viewer { role user { displayName } } }');
    expect(inA.data!.viewer).toEqual({ role: 'CLINICIAN', user: { displayName: 'CLINICIAN' } });
  });

  it('renames a member in this project only when an owner adds them again', async () => {
    const res = await gql(app.graphqlUrl, a.keys.OWNER, ADD, { input: { email: 'clinician@probe-a.test', displayName: 'Dr. C', role: 'CLINICIAN' } });
    expect(res.data!.addMember.membership.user.displayName).toBe('Dr. C');
    const inB = await gql(app.graphqlUrl, b.keys.OWNER, '{ viewer { project { members(first: 20) { edges { node { user { email displayName } } } } } } }');
    expect(inB.data!.viewer.project.members.edges.find((e: any) => e.node.user.email === 'clinician@probe-a.test').node.user.displayName).toBe('Probe');
  });
});
