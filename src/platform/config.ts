import { z } from 'zod';

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v ? v : undefined));

const envSchema = z
  .object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().default('127.0.0.1'),
  DATABASE_URL: z.string().url().optional(),
  EMBEDDED_PG_PORT: z.coerce.number().int().min(1).max(65535).default(54329),
  DATA_DIR: z.string().default('.data'),
  PUBLIC_URL: z.string().url().optional(),
  CORS_ORIGINS: z
    .string()
    .default('*')
    .transform((v) => (v.trim() === '*' ? '*' : v.split(',').map((o) => o.trim()).filter(Boolean))),
  URL_SIGNING_SECRET: z.string().min(32).optional(),
  SIGNED_URL_TTL_SECONDS: z.coerce.number().int().min(10).default(3600),
  MAX_UPLOAD_BYTES: z.coerce.number().int().min(1024).default(25 * 1024 * 1024),
  MAX_UPLOAD_FILES: z.coerce.number().int().min(1).default(100),
  /** Largest JSON request body (non-multipart); larger record imports go as a `recordsFile` upload. */
  MAX_JSON_BODY_BYTES: z.coerce.number().int().min(1024).default(1024 * 1024),
  MAX_IMAGE_PIXELS: z.coerce.number().int().min(1).default(50_000_000),
  MAX_IMAGE_SIDE: z.coerce.number().int().min(1).default(16384),
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(0).default(1200),
  QUERY_MAX_DEPTH: z.coerce.number().int().min(2).default(12),
  QUERY_MAX_ALIASES: z.coerce.number().int().min(1).default(20),
  QUERY_MAX_TOKENS: z.coerce.number().int().min(100).default(5000),
  QUERY_MAX_COST: z.coerce.number().int().min(100).default(500000),
  THUMBNAIL_SIZE: z.coerce.number().int().min(16).max(2048).default(256),
  EXPOSE_ERROR_DETAILS: z
    .enum(['true', 'false'])
    .optional()
    .transform((v) => v === 'true'),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),

  // LLM access: OpenAI (or any OpenAI-compatible server by base URL) or Azure OpenAI; neither → LLM_UNAVAILABLE.
  OPENAI_API_KEY: optionalString,
  OPENAI_BASE_URL: z.string().url().optional().or(z.literal('').transform(() => undefined)),
  AZURE_OPENAI_ENDPOINT: z.string().url().optional().or(z.literal('').transform(() => undefined)),
  AZURE_OPENAI_API_KEY: optionalString,
  AZURE_OPENAI_DEPLOYMENT: optionalString,
  AZURE_OPENAI_EMBEDDING_DEPLOYMENT: optionalString,
  AZURE_OPENAI_API_VERSION: z.string().default('2024-10-21'),
  LLM_VISION_MODEL: z.string().min(1).default('gpt-4o'),
  LLM_EMBEDDING_MODEL: z.string().min(1).default('text-embedding-3-small'),
  LLM_TIMEOUT_MS: z.coerce.number().int().min(100).default(120_000),
  LLM_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(5),
  LLM_RETRY_BASE_MS: z.coerce.number().int().min(1).default(1000),
  LLM_RETRY_MAX_MS: z.coerce.number().int().min(1).default(60_000),
  LLM_IMAGE_MAX_SIDE: z.coerce.number().int().min(64).max(8192).default(1024),
  LLM_MAX_CONCURRENCY: z.coerce.number().int().min(1).max(1024).default(64),
  LLM_REQUESTS_PER_MINUTE: z.coerce.number().int().min(0).default(5000),
  LLM_TOKENS_PER_MINUTE: z.coerce.number().int().min(0).default(2_000_000),
  LLM_PRICE_PROMPT_PER_MTOK: z.coerce.number().min(0).default(2.5),
  LLM_PRICE_COMPLETION_PER_MTOK: z.coerce.number().min(0).default(10),
  LLM_PRICE_EMBEDDING_PER_MTOK: z.coerce.number().min(0).default(0.02),
  /** Requests that expect JSON (ratings) ask for it with `response_format: json_schema`; `off` for servers without it. */
  LLM_STRUCTURED_OUTPUT: z.enum(['json_schema', 'off']).default('json_schema'),

  // Workers: `npm run worker`, or in-process with `npm start` unless RUN_WORKER=false.
  RUN_WORKER: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  WORKER_POLL_MS: z.coerce.number().int().min(50).default(1000),
  WORKER_HEARTBEAT_MS: z.coerce.number().int().min(50).default(5000),
  WORKER_DEAD_AFTER_MS: z.coerce.number().int().min(200).default(30_000),
  RUN_PROGRESS_INTERVAL_MS: z.coerce.number().int().min(0).default(100),

  // Selectors (ONNX Runtime): execution provider, threads, registration limits, scoring batches.
  ONNX_EXECUTION_PROVIDER: z.enum(['cpu', 'cuda']).default('cpu'),
  ONNX_INTRA_OP_THREADS: z.coerce.number().int().min(0).max(256).default(0),
  ONNX_INTER_OP_THREADS: z.coerce.number().int().min(0).max(256).default(0),
  ONNX_CUDA_DEVICE_ID: z.coerce.number().int().min(0).default(0),
  /** Threads for clustering and other stateless compute (0: half the CPUs); each loaded selector has a thread of its own besides. */
  COMPUTE_THREADS: z.coerce.number().int().min(0).max(256).default(0),
  SELECTOR_MAX_BYTES: z.coerce.number().int().min(1024).default(1024 * 1024 * 1024),
  /** Folders a curator may register selectors from by server-side path (comma-separated); empty allows none. */
  SELECTOR_IMPORT_DIRS: z
    .string()
    .default('')
    .transform((v) => v.split(',').map((d) => d.trim()).filter(Boolean)),
  SCORING_BATCH_SIZE: z.coerce.number().int().min(1).max(4096).default(256),
  /** Exports streaming at once per api process; each holds a pooled connection while it streams. */
  EXPORT_MAX_CONCURRENT: z.coerce.number().int().min(1).max(256).default(4),

  // Webhooks (Standard Webhooks): retry schedule after each failed attempt, SSRF guard, timeouts.
  /** Delays after attempt 1, 2, ... fail; the spec's schedule by default. After the last, the delivery FAILED. */
  WEBHOOK_RETRY_SCHEDULE_MS: z
    .string()
    .default('5000,300000,1800000,7200000,18000000,36000000,36000000')
    .transform((v) => v.split(',').map((d) => Number(d.trim())))
    .refine((ds) => ds.every((d) => Number.isInteger(d) && d >= 0), 'comma-separated whole milliseconds'),
  /** Private, loopback and link-local addresses are refused unless this is true (on-premise partners, tests). */
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  /** Deliveries a worker process makes at once, in slots of their own (runs never hold them). */
  WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  /** An endpoint is disabled after this many deliveries in a row failed every attempt. */
  WEBHOOK_DISABLE_AFTER_FAILED_DELIVERIES: z.coerce.number().int().min(1).default(5),
  /** How long the secret before a rotation keeps signing deliveries alongside the new one. */
  WEBHOOK_SECRET_GRACE_MS: z.coerce.number().int().min(0).default(24 * 3600 * 1000),

  // Images fetched from URLs (importRecords, uploadImage): the same SSRF guard as webhooks, with a setting of its own.
  /** Private, loopback and link-local addresses are refused unless this is true (on-premise image stores, tests). */
  IMAGE_FETCH_ALLOW_PRIVATE_NETWORKS: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  /** For one image, redirects included. */
  IMAGE_FETCH_TIMEOUT_MS: z.coerce.number().int().min(100).default(15_000),
  IMAGE_FETCH_MAX_REDIRECTS: z.coerce.number().int().min(0).max(10).default(3),
  /** Images one import fetches at once. */
  IMAGE_FETCH_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(8),

  // Prometheus /metrics: on the api's port, and on a port of its own in a worker process (0: none).
  WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  /** When set, /metrics asks for `Authorization: Bearer <token>`; otherwise restrict it at the network. */
  METRICS_BEARER_TOKEN: optionalString,
  })
  .superRefine((env, issues) => {
    if (!env.AZURE_OPENAI_ENDPOINT) return;
    for (const name of ['AZURE_OPENAI_API_KEY', 'AZURE_OPENAI_DEPLOYMENT'] as const) {
      if (!env[name]) issues.addIssue({ code: 'custom', path: [name], message: 'required when AZURE_OPENAI_ENDPOINT is set' });
    }
  });

export type AppConfig = z.infer<typeof envSchema>;

/** Reads and validates the environment once; a bad value stops start-up with a readable message. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}
