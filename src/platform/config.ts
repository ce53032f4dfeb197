import { z } from 'zod';

const envSchema = z.object({
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
