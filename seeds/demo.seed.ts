import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { AppServices } from '../src/app/app-services';
import { RequestContext } from '../src/modules/projects/request-context';
import { Role } from '../src/modules/projects/role';
import { buildReferenceSelector } from '../src/modules/selectors/reference-selector';
import { buildReferenceEncoder } from '../src/modules/encoders/reference-encoder';

export const DEMO_SLUG = 'demo';

/** Synthetic figures drawn here, so the demo ships no third-party data. */
async function drawFigure(kind: 'radial' | 'stripes' | 'blobs', size = 256): Promise<Buffer> {
  const shapes = {
    radial: `<defs><radialGradient id="g"><stop offset="0" stop-color="#eee"/><stop offset="1" stop-color="#111"/></radialGradient></defs><rect width="100%" height="100%" fill="#000"/><ellipse cx="50%" cy="50%" rx="40%" ry="45%" fill="url(#g)"/>`,
    stripes: `<rect width="100%" height="100%" fill="#222"/>${Array.from({ length: 8 }, (_, i) => `<rect x="${i * 32}" y="0" width="14" height="100%" fill="#${(9 - i).toString(16).repeat(3)}"/>`).join('')}`,
    blobs: `<rect width="100%" height="100%" fill="#f3d9e6"/>${Array.from({ length: 12 }, (_, i) => `<circle cx="${(i * 53) % 256}" cy="${(i * 97) % 256}" r="${10 + (i % 4) * 6}" fill="#7b2d6b" fill-opacity="0.7"/>`).join('')}`,
  };
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}">${shapes[kind]}</svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

const records = [
  {
    id: 1,
    imgs: 'demo_ct.png',
    pair_id: 'demo_1',
    pmid: '0000001',
    fig_label: 'Figure 1',
    fig_id: 'F1',
    fig_caption: 'Synthetic axial CT-like slice showing a round, well-circumscribed structure (demo data).',
    in_text_mention: [{ tokens: 'The synthetic slice in Figure 1 illustrates a centred round structure.' }],
    domain: { ct_scan: true },
    conversations: [
      { from: 'human', value: 'What kind of image is this?' },
      { from: 'gpt', value: 'It is a synthetic grayscale image drawn to resemble an axial CT slice.' },
      { from: 'human', value: 'What is at the centre?' },
      { from: 'gpt', value: 'A bright, round, well-circumscribed structure fading towards its edges.' },
    ],
  },
  {
    id: 2,
    imgs: 'demo_mri.png',
    pair_id: 'demo_2',
    pmid: '0000002',
    fig_label: 'Figure 2',
    fig_id: 'F2',
    fig_caption: 'Synthetic MRI-like pattern of vertical bands of decreasing intensity (demo data).',
    domain: { mri: true },
  },
  {
    id: 3,
    imgs: 'demo_histology.png',
    pair_id: 'demo_3',
    pmid: '0000003',
    fig_label: 'Figure 3',
    fig_id: 'F3',
    fig_caption: 'Synthetic histology-like field with scattered purple nuclei on a pink background (demo data).',
    domain: { histology: true },
  },
];

/** The seeded reference selector, active, so scoring and datasets work offline from the first start. */
async function registerReferenceSelector(services: AppServices, ctx: RequestContext): Promise<void> {
  const reference = buildReferenceSelector();
  await services.selectors.register(ctx, {
    name: 'reference',
    description: 'Seeded baseline built from code (not a clinical model): see README, Selectors.',
    files: { model: reference.model, tokenizer: Buffer.from(reference.tokenizer), manifest: Buffer.from(JSON.stringify(reference.manifest)) },
    activate: true,
  });
}

/** The seeded reference encoder (issue 11), so a training run works offline from the first start; a few milliseconds to validate. */
async function registerReferenceEncoder(services: AppServices, ctx: RequestContext): Promise<void> {
  const reference = buildReferenceEncoder();
  await services.encoders.register(ctx, {
    name: 'reference',
    description: 'Seeded baseline encoder built from code (not a clinical model): see README, Training a selector.',
    files: { model: reference.model, tokenizer: Buffer.from(reference.tokenizer), manifest: Buffer.from(JSON.stringify(reference.manifest)) },
  });
}

/**
 * Creates the demo project on first start: an owner, a development API key (kept in DATA_DIR so it
 * can be printed again), three drawn figures, one demonstration and the active reference selector. Does nothing when it exists.
 */
export async function seedDemo(services: AppServices, dataDir: string): Promise<{ apiKey: string | null; created: boolean }> {
  const keyFile = path.join(dataDir, 'dev-api-key');
  const existing = await services.projects.findProjectBySlug(DEMO_SLUG);
  if (existing) return { apiKey: fs.existsSync(keyFile) ? fs.readFileSync(keyFile, 'utf8').trim() : null, created: false };

  const { project, owner, secret } = await services.projects.bootstrapProject({
    name: 'Demo lab',
    slug: DEMO_SLUG,
    ownerEmail: 'owner@demo.local',
    ownerName: 'Demo owner',
    keyName: 'local development',
  });
  fs.mkdirSync(dataDir, { recursive: true });
  fs.writeFileSync(keyFile, secret + '\n', { mode: 0o600 });
  const ctx = new RequestContext(project.id, owner.id, Role.OWNER, null);
  const files = [
    { fileName: 'demo_ct.png', bytes: await drawFigure('radial') },
    { fileName: 'demo_mri.png', bytes: await drawFigure('stripes') },
    { fileName: 'demo_histology.png', bytes: await drawFigure('blobs') },
  ];
  const result = await services.recordsImport.import(ctx, records, files, { createDemonstrations: true });
  if (result.recordErrors.length) throw new Error(`demo seed is invalid: ${JSON.stringify(result.recordErrors)}`);
  await registerReferenceSelector(services, ctx);
  await registerReferenceEncoder(services, ctx);
  return { apiKey: secret, created: true };
}
