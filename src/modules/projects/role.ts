import { registerEnumType } from 'type-graphql';

/** A user's role in one project; each role can do everything the roles below it can. */
export enum Role {
  VIEWER = 'VIEWER',
  CLINICIAN = 'CLINICIAN',
  CURATOR = 'CURATOR',
  OWNER = 'OWNER',
}
registerEnumType(Role, {
  name: 'Role',
  description: "A member's role in a project; each role can do everything the roles below it can (VIEWER < CLINICIAN < CURATOR < OWNER).",
  valuesConfig: {
    VIEWER: { description: 'Reads the project.' },
    CLINICIAN: { description: 'Annotates: preferences, accept/reject, demonstration selection.' },
    CURATOR: { description: 'Imports, generates, scores, builds datasets.' },
    OWNER: { description: 'Manages members and API keys.' },
  },
});

const rank: Record<Role, number> = { VIEWER: 0, CLINICIAN: 1, CURATOR: 2, OWNER: 3 };

export function roleAtLeast(role: Role, needed: Role): boolean {
  return rank[role] >= rank[needed];
}
