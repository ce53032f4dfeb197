/**
 * Dependencies point one way, app → modules → platform (DESIGN.md §3): only the composition root
 * (src/app/) knows the whole services bag, and platform code never reaches into a module. This scans
 * every import (static, type-only, dynamic and require) under src/modules and src/platform and
 * resolves it against the file's folder.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../support/shared-data';

const SRC = path.join(PROJECT_ROOT, 'src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

/** Relative specifiers in `from '…'`, `import('…')` and `require('…')`. */
const IMPORT = /(?:\bfrom\s+|\bimport\s*\(\s*|\brequire\s*\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g;

/** The top-level folder of src/ that a relative import in `file` lands in (app, modules, platform). */
function importedAreas(file: string, text: string): string[] {
  return [...text.matchAll(IMPORT)].map((m) => path.relative(SRC, path.resolve(path.dirname(file), m[1])).split(path.sep)[0]);
}

/** `file: imports <area>` for each import that points against the one-way direction. */
function violations(layer: 'modules' | 'platform', forbidden: string[]): string[] {
  return sourceFiles(path.join(SRC, layer)).flatMap((file) => {
    const areas = importedAreas(file, fs.readFileSync(file, 'utf8'));
    return [...new Set(areas.filter((a) => forbidden.includes(a)))].map((a) => `${path.relative(path.join(SRC, '..'), file)}: imports src/${a}`);
  });
}

describe('dependency direction', () => {
  it('no module imports from the composition root (src/app)', () => {
    expect(violations('modules', ['app'])).toEqual([]);
  });

  it('platform imports neither a module nor the composition root', () => {
    expect(violations('platform', ['app', 'modules'])).toEqual([]);
  });

  it('sees an import against the direction when there is one (the scan itself works)', () => {
    const file = path.join(SRC, 'modules', 'runs', 'runs.resolver.ts');
    const text = "import type { AppServices } from '../../app/app-services';\nimport { x } from '../../platform/db';\nconst y = require('../../app/schema');";
    expect(importedAreas(file, text)).toEqual(['app', 'platform', 'app']);
  });
});
