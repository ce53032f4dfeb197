/**
 * The loader behind `npm start` (scripts/register-ts.js): SWC with the decorator metadata that
 * type-graphql and TypeORM read, and a compile cache that can never serve a stale build.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { PROJECT_ROOT } from '../support/shared-data';

const ROOT = PROJECT_ROOT;
const REGISTER = path.join(ROOT, 'scripts', 'register-ts.js');

describe('scripts/register-ts.js', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bmv-register-'));
  const cacheDir = path.join(dir, 'cache');
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const run = (file: string, args: string[] = []) =>
    execFileSync(process.execPath, ['-r', REGISTER, file, ...args], { cwd: ROOT, env: { ...process.env, TS_CACHE_DIR: cacheDir }, encoding: 'utf8' });

  const decorated = (fieldType: string) => `import 'reflect-metadata';
function Field(): PropertyDecorator { return () => undefined; }
function Inject(): ParameterDecorator { return () => undefined; }
class Service {}
class Widget {
  @Field() name: ${fieldType};
  constructor(@Inject() readonly service: Service, readonly size: number) {}
}
console.log(JSON.stringify({
  field: Reflect.getMetadata('design:type', Widget.prototype, 'name').name,
  params: Reflect.getMetadata('design:paramtypes', Widget).map((t: Function) => t.name),
}));
`;

  it('emits decorator metadata, as tsc does and esbuild does not', () => {
    const file = path.join(dir, 'widget.ts');
    fs.writeFileSync(file, decorated('string'));
    // reflect-metadata resolves from the project, so the file must live where node finds it.
    const out = execFileSync(process.execPath, ['-r', REGISTER, '-e', `require(${JSON.stringify(file)})`], { cwd: ROOT, env: { ...process.env, TS_CACHE_DIR: cacheDir, NODE_PATH: path.join(ROOT, 'node_modules') }, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ field: 'String', params: ['Service', 'Number'] });
  });

  it('recompiles a changed source at once, even with the same size and modification time (no stale build)', () => {
    const file = path.join(dir, 'value.ts');
    const write = (value: string) => {
      fs.writeFileSync(file, `const value: string = '${value}';\nconsole.log(value);\n`);
      fs.utimesSync(file, new Date(2020, 0, 1), new Date(2020, 0, 1));
    };
    write('aaaa');
    expect(run(file).trim()).toBe('aaaa');
    expect(run(file).trim()).toBe('aaaa');
    const cached = fs.readdirSync(cacheDir).length;
    write('bbbb');
    expect(run(file).trim()).toBe('bbbb');
    expect(fs.readdirSync(cacheDir).length).toBe(cached + 1);
  });

  it('boots the real schema through it unchanged (type-graphql reads the metadata)', () => {
    const schemaFile = path.join(ROOT, 'schema', 'schema.graphql');
    const committed = fs.readFileSync(schemaFile, 'utf8');
    try {
      expect(run('src/main.ts', ['print-schema'])).toContain('wrote');
      expect(fs.readFileSync(schemaFile, 'utf8')).toBe(committed);
    } finally {
      fs.writeFileSync(schemaFile, committed);
    }
  });
});
