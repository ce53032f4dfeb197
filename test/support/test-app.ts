import 'reflect-metadata';
import crypto from 'node:crypto';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../ormconfig';
import { migrateAll } from '../../src/app/bootstrap';
import { startWorker } from '../../src/app/worker';
import type { JobWorker } from '../../src/platform/jobs';
import { loadConfig } from '../../src/platform/config';
import { setLogLevel } from '../../src/platform/logging';
import { startServer, RunningServer } from '../../src/app/server';
import { RequestContext } from '../../src/modules/projects/request-context';
import { Role } from '../../src/modules/projects/role';

export interface TestApp extends RunningServer {
  ds: DataSource;
  databaseName: string;
  databaseUrl: string;
  /** Starts an in-process worker (once). */
  startWorker(): Promise<void>;
  stopWorker(): Promise<void>;
  stop(): Promise<void>;
}

function serverUrl(database: string): string {
  const url = new URL(process.env.DATABASE_URL!);
  url.pathname = `/${database}`;
  return url.toString();
}

async function admin<T>(work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Boots the real api on a port of its own, over a fresh database with all migrations applied; with a worker when asked. */
export async function startTestApp(env: Record<string, string> = {}, options: { worker?: boolean } = {}): Promise<TestApp> {
  setLogLevel((process.env.TEST_LOG_LEVEL as 'error') ?? 'error');
  const databaseName = `bmv_test_${crypto.randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${databaseName}`));
  const ds = new DataSource(dataSourceOptions(serverUrl(databaseName)));
  await ds.initialize();
  await migrateAll(ds, serverUrl(databaseName));
  const config = loadConfig({ NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'error', WORKER_POLL_MS: '200', ...env });
  const server = await startServer(ds, config);
  let worker: JobWorker | null = options.worker ? await startWorker(server.services) : null;
  return {
    ...server,
    ds,
    databaseName,
    databaseUrl: serverUrl(databaseName),
    startWorker: async () => {
      worker ??= await startWorker(server.services);
    },
    stopWorker: async () => {
      await worker?.stop();
      worker = null;
    },
    stop: async () => {
      await worker?.stop();
      await server.close();
      await ds.destroy();
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`));
    },
  };
}

export interface TestProject {
  id: string;
  slug: string;
  /** API key secrets by role. */
  keys: Record<Role, string>;
  ownerId: string;
  ctx(role?: Role): RequestContext;
  userIds: Record<Role, string>;
}

/** A project with one member and one key per role. */
export async function createTestProject(app: TestApp, slug: string): Promise<TestProject> {
  const { project, owner, secret } = await app.services.projects.bootstrapProject({ name: `Project ${slug}`, slug, ownerEmail: `owner@${slug}.test`, ownerName: 'Owner' });
  const ownerCtx = new RequestContext(project.id, owner.id, Role.OWNER, null);
  const keys = { [Role.OWNER]: secret } as Record<Role, string>;
  const userIds = { [Role.OWNER]: owner.id } as Record<Role, string>;
  for (const role of [Role.CURATOR, Role.CLINICIAN, Role.VIEWER]) {
    const email = `${role.toLowerCase()}@${slug}.test`;
    const membership = await app.services.projects.addMember(ownerCtx, { email, displayName: role, role });
    keys[role] = (await app.services.projects.createKeyForMember(project.id, email, role)).secret;
    userIds[role] = membership.userId;
  }
  return {
    id: project.id,
    slug,
    keys,
    ownerId: owner.id,
    userIds,
    ctx: (role = Role.OWNER) => new RequestContext(project.id, userIds[role], role, null),
  };
}
