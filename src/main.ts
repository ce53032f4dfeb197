import 'reflect-metadata';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, AppConfig } from './platform/config';
import { logger, setLogLevel } from './platform/logging';
import { ProcessLifecycle } from './platform/lifecycle';
import { UrlSigner } from './platform/signing';
import { openDatabase, Database } from './app/bootstrap';
import { startServer } from './app/server';
import { createServices, AppServices } from './app/app-services';
import { writeSchemaFile } from './app/schema';
import { startWorker } from './app/worker';
import { startMetricsServer } from './platform/metrics';
import { RequestContext } from './modules/projects/request-context';
import { Role } from './modules/projects/role';
import { seedDemo } from '../seeds/demo.seed';
import { buildReferenceEncoder, writeEncoderFolder } from './modules/encoders/reference-encoder';
import { buildReferenceSelector, writeSelectorFolder } from './modules/selectors/reference-selector';

const USAGE = `Usage: npm run cli -- <command> [options]
  serve                                   start the api, with a worker unless RUN_WORKER=false (npm start)
  worker                                  start a worker only (npm run worker)
  migrate                                 apply pending migrations
  print-schema                            write schema/schema.graphql from the code
  create-project --name N --slug S --owner-email E [--owner-name O]
                                          a project, its owner and the owner's first API key
  create-key --project S --email E [--name N]
                                          another API key for an existing member
  import --project S --file records.json [--images DIR] [--no-demonstrations]
                                          import LLaVA-Med / BioMed-VITAL figure records
  build-selector [--out DIR] [--profile reference|heavy] [--seed N]
                                          write the seeded reference selector (model.onnx, tokenizer.json,
                                          selector.json) to DIR (default DATA_DIR/selectors/<profile>)
  build-encoder [--out DIR] [--seed N]   write the seeded reference encoder (model.onnx, tokenizer.json,
                                          encoder.json) to DIR (default DATA_DIR/encoders/reference)
DATABASE_URL selects the database; without it an embedded Postgres runs under DATA_DIR (.data).`;

/** Signals, a vanished parent and failed starts all end the process through here, within a bound. */
const lifecycle = new ProcessLifecycle();

async function withServices<T>(config: AppConfig, work: (services: AppServices, db: Database) => Promise<T>): Promise<T> {
  const db = await openDatabase(config, { migrate: true });
  lifecycle.onShutdown('database', () => db.close());
  try {
    return await work(createServices(db.ds, config, new UrlSigner('cli-does-not-sign-urls-0000000000000', 60)), db);
  } finally {
    await db.close();
  }
}

/** Where the database is, for the banner: the embedded server's URL lets a worker on this machine use it. */
function describeDatabase(db: Database, config: AppConfig): string {
  if (!db.embeddedRole) return 'DATABASE_URL';
  const how = {
    started: 'started by this process, stopped when it exits',
    adopted: 'left running by a process that is gone; this one stops it when it exits',
    shared: 'shared with the process that started it',
  }[db.embeddedRole];
  return `embedded Postgres (${path.join(config.DATA_DIR, 'postgres')}; ${how})\n             ${db.url}`;
}

async function serve(config: AppConfig): Promise<void> {
  const db = await openDatabase(config, { migrate: true });
  lifecycle.onShutdown('database', () => db.close());
  const server = await startServer(db.ds, config, { holdReadiness: true });
  lifecycle.onShutdown('api', () => server.close());
  const worker = config.RUN_WORKER ? await startWorker(server.services) : null;
  if (worker) lifecycle.onShutdown('worker', () => worker.stop());
  const seed = process.env.SEED_DEMO === 'false' ? null : await seedDemo(server.services, config.DATA_DIR);
  server.markReady();
  // Wall time since the process started (module loading included), not since this function began.
  const seconds = (performance.now() / 1000).toFixed(1);
  console.log(`
BioMed-VITAL API ready in ${seconds}s
  GraphQL:   ${server.graphqlUrl}  (HTTP and WebSocket)
  IDE:       ${server.url}/ide/
  Health:    ${server.url}/healthz  ${server.url}/readyz
  Worker:    ${worker ? 'in-process' : 'off (RUN_WORKER=false); run `npm run worker`'}   LLM: ${server.services.llm.client ? `${server.services.llm.client.provider} ${server.services.llm.client.visionModel}` : 'not configured (LLM runs answer LLM_UNAVAILABLE)'}
  Database:  ${describeDatabase(db, config)}
${seed?.apiKey ? `  Dev key:   ${seed.apiKey}   (demo project, OWNER; send as "Authorization: Bearer <key>")` : ''}
`);
}

/** A worker process alone: no HTTP, any number of them beside the api processes. */
async function runWorker(config: AppConfig): Promise<void> {
  const db = await openDatabase(config, { migrate: true });
  lifecycle.onShutdown('database', () => db.close());
  const services = createServices(db.ds, config, new UrlSigner('workers-do-not-sign-urls-000000000000', 60), 'worker');
  const worker = await startWorker(services);
  lifecycle.onShutdown('worker', () => worker.stop());
  await serveWorkerMetrics(services, config);
  console.log(`BioMed-VITAL worker ready (concurrency ${config.WORKER_CONCURRENCY}; LLM ${services.llm.client ? services.llm.client.visionModel : 'not configured'}; database ${describeDatabase(db, config)})`);
}

/** The worker's /metrics on WORKER_METRICS_PORT; a port already taken (two workers on a machine) costs the metrics, not the worker. */
async function serveWorkerMetrics(services: AppServices, config: AppConfig): Promise<void> {
  if (!config.WORKER_METRICS_PORT) return;
  try {
    const server = await startMetricsServer(services.metrics, config.WORKER_METRICS_PORT, config.HOST, config.METRICS_BEARER_TOKEN);
    lifecycle.onShutdown('metrics', () => server.close());
    console.log(`Worker metrics: ${server.url}`);
  } catch (error) {
    logger.error('worker metrics not served', { port: config.WORKER_METRICS_PORT, error: String(error) });
  }
}

function required(values: Record<string, unknown>, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || !value) throw new Error(`--${name} is required\n\n${USAGE}`);
  return value;
}

async function ownerContext(services: AppServices, slug: string): Promise<RequestContext> {
  const project = await services.projects.findProjectBySlug(slug);
  if (!project) throw new Error(`No project with slug ${slug}`);
  const rows: { user_id: string }[] = await services.ds.query(`SELECT user_id FROM memberships WHERE project_id = $1 AND role = 'OWNER' ORDER BY created_at LIMIT 1`, [project.id]);
  return new RequestContext(project.id, rows[0].user_id, Role.OWNER, null);
}

async function main(): Promise<void> {
  const [command = 'serve', ...rest] = process.argv.slice(2);
  const { values } = parseArgs({
    args: rest,
    options: {
      name: { type: 'string' },
      slug: { type: 'string' },
      'owner-email': { type: 'string' },
      'owner-name': { type: 'string' },
      project: { type: 'string' },
      email: { type: 'string' },
      file: { type: 'string' },
      images: { type: 'string' },
      'no-demonstrations': { type: 'boolean' },
      out: { type: 'string' },
      profile: { type: 'string' },
      seed: { type: 'string' },
    },
  });
  const config = loadConfig();
  setLogLevel(config.LOG_LEVEL);
  lifecycle.install();
  switch (command) {
    case 'serve':
      return serve(config);
    case 'worker':
      return runWorker(config);
    case 'print-schema':
      console.log(`wrote ${await writeSchemaFile()}`);
      return;
    case 'migrate':
      await withServices(config, async () => console.log('migrations applied'));
      return;
    case 'create-project':
      await withServices(config, async (s) => {
        const email = required(values, 'owner-email');
        const r = await s.projects.bootstrapProject({ name: required(values, 'name'), slug: required(values, 'slug'), ownerEmail: email, ownerName: values['owner-name'] ?? email });
        console.log(`project ${r.project.slug} (${r.project.globalId}), owner ${r.owner.email}\nAPI key (shown once): ${r.secret}`);
      });
      return;
    case 'create-key':
      await withServices(config, async (s) => {
        const project = await s.projects.findProjectBySlug(required(values, 'project'));
        if (!project) throw new Error('No such project');
        const r = await s.projects.createKeyForMember(project.id, required(values, 'email'), values.name ?? 'cli');
        console.log(`API key (shown once): ${r.secret}`);
      });
      return;
    case 'import':
      await withServices(config, async (s) => {
        const ctx = await ownerContext(s, required(values, 'project'));
        const records = JSON.parse(fs.readFileSync(required(values, 'file'), 'utf8'));
        const dir = values.images;
        const files = dir ? fs.readdirSync(dir).map((f) => ({ fileName: f, bytes: fs.readFileSync(path.join(dir, f)) })) : [];
        const result = await s.recordsImport.import(ctx, records, files, { createDemonstrations: !values['no-demonstrations'] });
        console.log(JSON.stringify(result, null, 2));
        if (result.recordErrors.length) process.exitCode = 1;
      });
      return;
    case 'build-selector': {
      const profile = values.profile ?? 'reference';
      if (profile !== 'reference' && profile !== 'heavy') throw new Error(`--profile must be reference or heavy\n\n${USAGE}`);
      const seed = values.seed === undefined ? undefined : Number(values.seed);
      if (seed !== undefined && !Number.isSafeInteger(seed)) throw new Error(`--seed must be an integer\n\n${USAGE}`);
      const dir = path.resolve(values.out ?? path.join(config.DATA_DIR, 'selectors', profile));
      const written = await writeSelectorFolder(dir, buildReferenceSelector({ profile, seed }));
      console.log(`${profile} selector written to ${dir}`);
      for (const file of written) console.log(`  ${file.name.padEnd(15)} ${String(file.bytes).padStart(10)} bytes  sha256 ${file.sha256}`);
      return;
    }
    case 'build-encoder': {
      const seed = values.seed === undefined ? undefined : Number(values.seed);
      if (seed !== undefined && !Number.isSafeInteger(seed)) throw new Error(`--seed must be an integer\n\n${USAGE}`);
      const dir = path.resolve(values.out ?? path.join(config.DATA_DIR, 'encoders', 'reference'));
      const written = await writeEncoderFolder(dir, buildReferenceEncoder({ seed }));
      console.log(`reference encoder written to ${dir}`);
      for (const file of written) console.log(`  ${file.name.padEnd(15)} ${String(file.bytes).padStart(10)} bytes  sha256 ${file.sha256}`);
      return;
    }
    default:
      console.error(USAGE);
      process.exitCode = 2;
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  // Through the lifecycle, so that a failed start (a port in use) stops the Postgres it started.
  void lifecycle.shutdown('failed', 1);
});
