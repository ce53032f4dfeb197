import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { buildAppSchema, printAppSchema, SCHEMA_FILE } from '../../src/app/schema';
import { PROJECT_ROOT, SHARED_ROOT } from '../support/shared-data';

describe('checked-in schema', () => {
  it('matches the SDL printed from the code (run `npm run schema:print` after changing the API)', async () => {
    const printed = printAppSchema(await buildAppSchema(null));
    expect(fs.readFileSync(SCHEMA_FILE, 'utf8')).toBe(printed);
  });

  const lint = path.join(SHARED_ROOT, 'checks', 'schema-lint.mjs');
  (fs.existsSync(lint) ? it : it.skip)('follows the API conventions of DESIGN.md §4 (shared schema-lint)', () => {
    const output = execFileSync(process.execPath, [lint, SCHEMA_FILE], { cwd: PROJECT_ROOT, encoding: 'utf8' });
    expect(output).toMatch(/follows the API conventions/);
  });
});
