/**
 * Runs the TypeScript sources directly, fast: SWC compiles each file (with the decorator metadata
 * that type-graphql and TypeORM read, which esbuild-based runners do not emit), and the output is
 * cached on disk under a hash of the file's path and content, so a second start compiles nothing
 * and a changed source is always recompiled (a stale build can never run).
 * Usage: node -r ./scripts/register-ts.js src/main.ts serve   (TS_CACHE_DIR moves the cache)
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const swc = require('@swc/core');

const options = {
  jsc: {
    parser: { syntax: 'typescript', decorators: true },
    target: 'es2022',
    // Matches tsconfig.json: experimentalDecorators, emitDecoratorMetadata, useDefineForClassFields false.
    transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
    keepClassNames: true,
  },
  // ignoreDynamic keeps import() a real import(), as `module: node20` does, for ESM-only packages.
  module: { type: 'commonjs', ignoreDynamic: true },
  sourceMaps: 'inline',
};
const cacheDir = process.env.TS_CACHE_DIR || path.join(__dirname, '..', 'node_modules', '.cache', 'register-ts');
const salt = `${swc.version}\n${JSON.stringify(options)}\n`;

function compile(source, filename) {
  const key = crypto.createHash('sha256').update(salt).update(filename).update('\0').update(source).digest('hex');
  const cached = path.join(cacheDir, `${key}.js`);
  try {
    return fs.readFileSync(cached, 'utf8');
  } catch {
    const { code } = swc.transformSync(source, { ...options, filename });
    try {
      fs.mkdirSync(cacheDir, { recursive: true });
      // Written aside and renamed: a concurrent start never reads a half-written file.
      const partial = `${cached}.${process.pid}.tmp`;
      fs.writeFileSync(partial, code);
      fs.renameSync(partial, cached);
    } catch {
      // A read-only cache only costs speed.
    }
    return code;
  }
}

require.extensions['.ts'] = function registerTs(module, filename) {
  module._compile(compile(fs.readFileSync(filename, 'utf8'), filename), filename);
};
