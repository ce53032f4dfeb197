import crypto from 'node:crypto';
import tar from 'tar-stream';
import type { Pool } from 'pg';
import { startTestApp, createTestProject, TestApp, TestProject } from './support/test-app';
import { DatasetFixture, FIXTURE_DATASET_NAME, FIXTURE_DATASET_VERSION, FixtureCandidate, seedBulkDataset, seedDatasetFixture } from './support/dataset-fixture';
import { datasetExportPath } from '../src/modules/datasets/dataset-exports.routes';
import type { StoredRound } from '../src/modules/candidates/conversation';

/** Built here on purpose rather than with the code under test. */
const EXT: Record<string, string> = { 'image/png': 'png', 'image/jpeg': 'jpg' };
const pathOf = (image: { contentHash: string | null; mimeType: string | null }) => (image.contentHash ? `images/${image.contentHash}.${EXT[image.mimeType!]}` : null);
const sha256 = (bytes: Buffer) => crypto.createHash('sha256').update(bytes).digest('hex');
const llavaTurns = (rounds: StoredRound[]) =>
  rounds.flatMap((r, i) => [
    { from: 'human', value: (i === 0 ? '<image>\n' : '') + r.question },
    { from: 'gpt', value: r.answers[0] },
  ]);
const messages = (rounds: StoredRound[]) => llavaTurns(rounds).map((t) => ({ role: t.from === 'human' ? 'user' : 'assistant', content: t.value }));

describe('dataset exports over HTTP', () => {
  let app: TestApp;
  let lab: TestProject;
  let other: TestProject;
  let fx: DatasetFixture;
  /** The dataset's items in rank order. */
  let ranked: FixtureCandidate[];
  const imageOf = (c: FixtureCandidate) => fx.images.find((i) => i.id === c.imageId)!;

  const get = (path: string, key: string | null, init: RequestInit = {}) =>
    fetch(`${app.url}${path}`, { ...init, headers: key ? { authorization: `Bearer ${key}` } : {} });
  const download = async (format: Parameters<typeof datasetExportPath>[1], key = lab.keys.VIEWER, datasetId = fx.datasetId) => {
    const res = await get(datasetExportPath(datasetId, format), key);
    expect(res.status).toBe(200);
    return res;
  };
  const jsonLines = (text: string) => text.split('\n').filter(Boolean).map((line) => JSON.parse(line));

  beforeAll(async () => {
    app = await startTestApp();
    lab = await createTestProject(app, 'export-lab');
    other = await createTestProject(app, 'export-other');
    fx = await seedDatasetFixture(app, lab);
    ranked = [...fx.candidates].sort((a, b) => a.rank! - b.rank!);
  });
  afterAll(async () => {
    await app?.stop();
  });

  it('LLaVA JSON: one array in rank order, image paths of the archive, first answers, <image> on the first question', async () => {
    const res = await download('llava.json');
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="BioMed-VITAL-top-80-v${FIXTURE_DATASET_VERSION}.llava.json"`);
    const samples = (await res.json()) as { id: string; image: string | null; conversations: { from: string; value: string }[] }[];
    expect(samples.map((s) => s.id)).toEqual(ranked.map((c) => c.id));
    for (const [k, sample] of samples.entries()) {
      const c = ranked[k];
      expect(sample).toEqual({ id: c.id, image: pathOf(imageOf(c)), conversations: llavaTurns(c.rounds) });
    }
    expect(samples.filter((s) => s.image === null)).toHaveLength(2); // the record-only image's two candidates
  });

  it('LLaVA JSON of an empty dataset is an empty array', async () => {
    const res = await download('llava.json', lab.keys.VIEWER, fx.emptyDatasetId);
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="empty-v1.llava.json"');
    expect(await res.json()).toEqual([]);
  });

  it('JSONL: one record per item with rank, score, image, provenance', async () => {
    const res = await download('jsonl');
    expect(res.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    expect(res.headers.get('content-disposition')).toContain('.jsonl"');
    const records = jsonLines(await res.text());
    expect(records.map((r) => r.id)).toEqual(ranked.map((c) => c.id));
    expect(records.map((r) => r.rank)).toEqual(ranked.map((c) => c.rank));
    const first = records[0];
    const c = ranked[0];
    expect(first).toEqual({
      id: c.id,
      image: pathOf(imageOf(c)),
      conversations: llavaTurns(c.rounds),
      rank: 1,
      score: 0.99,
      image_id: c.imageId,
      pair_id: null,
      pmid: null,
      fig_label: null,
      modalities: ['MRI'],
      caption: 'Axial MRI of the brain with a hyperintense lesion in the left frontal lobe.',
      mentions: ['The lesion is visible in Figure 2.'],
      cluster_id: null,
      alternative_answers: c.rounds.map((r) => r.answers[1]),
      form: 'TWO_ANSWERS',
      status: 'OK',
      generation_run_id: null,
      model: 'gpt-4o',
      prompt_template_version: 'generation/v1',
      sample_index: 0,
    });
    const singleAnswer = records.find((r) => r.id === fx.candidates[13].id);
    expect(singleAnswer).toMatchObject({ form: 'SINGLE_ANSWER', alternative_answers: [null, null, null, null] });
    const recordOnly = records.find((r) => r.image_id === fx.images[5].id);
    expect(recordOnly).toMatchObject({ image: null, pair_id: 'fixture_record_only', modalities: ['CT'] });
  });

  it('TRL pairs: one per decided round or candidate pair, clinicians first, in rank order', async () => {
    const res = await download('trl.jsonl');
    expect(res.headers.get('content-disposition')).toContain('-v3.trl.jsonl"');
    const pairs = jsonLines(await res.text());
    const C = fx.candidates;
    const X = fx.outside;
    const roundPair = (i: number, round: number, winner: 0 | 1, source: string, kinds: string[], votes: [number, number]) => ({
      prompt: messages(C[i].rounds).slice(0, 2 * round + 1),
      chosen: [{ role: 'assistant', content: C[i].rounds[round].answers[winner] }],
      rejected: [{ role: 'assistant', content: C[i].rounds[round].answers[1 - winner] }],
      id: `${C[i].id}:round:${round}`,
      candidate_id: C[i].id,
      other_candidate_id: null,
      round,
      rank: C[i].rank,
      image: pathOf(imageOf(C[i])),
      source,
      kinds,
      votes: { chosen: votes[0], rejected: votes[1] },
    });
    const expected = [
      roundPair(2, 0, 0, 'CLINICIAN', ['PAIRWISE', 'RATING'], [2, 0]),
      {
        // C7 (rank 2) was preferred to C6 (rank 7); both open with the same question.
        prompt: messages(C[7].rounds).slice(0, 1),
        chosen: messages(C[7].rounds).slice(1),
        rejected: messages(C[6].rounds).slice(1),
        id: `${C[7].id}:vs:${C[6].id}`,
        candidate_id: C[7].id,
        other_candidate_id: C[6].id,
        round: null,
        rank: 2,
        image: pathOf(imageOf(C[7])),
        source: 'CLINICIAN',
        kinds: ['PAIRWISE'],
        votes: { chosen: 1, rejected: 0 },
      },
      roundPair(4, 0, 1, 'MODEL', ['RATING'], [1, 0]),
      roundPair(0, 0, 1, 'CLINICIAN', ['PAIRWISE'], [1, 0]),
      roundPair(0, 2, 1, 'MODEL', ['RATING'], [1, 0]),
      roundPair(3, 0, 1, 'CLINICIAN', ['PAIRWISE'], [1, 0]),
      {
        // The model preferred X (outside the dataset) to C8; nothing in common, so no prompt.
        prompt: [],
        chosen: messages(X.rounds),
        rejected: messages(C[8].rounds),
        id: `${C[8].id}:vs:${X.id}`,
        candidate_id: C[8].id,
        other_candidate_id: X.id,
        round: null,
        rank: C[8].rank,
        image: pathOf(imageOf(C[8])),
        source: 'MODEL',
        kinds: ['PAIRWISE'],
        votes: { chosen: 1, rejected: 0 },
      },
      roundPair(1, 0, 0, 'CLINICIAN', ['ACCEPTANCE'], [1, 0]),
      roundPair(5, 1, 0, 'MODEL', ['RATING'], [2, 1]),
    ];
    expect(pairs.map((p) => p.id)).toEqual(expected.map((p) => p.id));
    expect(pairs).toEqual(expected);
  });

  it('image archive: each referenced image once, bytes as uploaded, then MISSING.txt', async () => {
    const res = await download('images.tar');
    expect(res.headers.get('content-type')).toBe('application/x-tar');
    expect(res.headers.get('content-disposition')).toContain('-v3.images.tar"');
    const entries: { name: string; bytes: Buffer }[] = [];
    const extract = tar.extract();
    extract.end(Buffer.from(await res.arrayBuffer()));
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      entries.push({ name: entry.header.name, bytes: Buffer.concat(chunks) });
    }
    // Images with bytes, by id.
    const withBytes = fx.images.filter((i) => i.bytes).sort((a, b) => (a.id < b.id ? -1 : 1));
    expect(entries.map((e) => e.name)).toEqual([...withBytes.map((i) => pathOf(i)), 'MISSING.txt']);
    for (const [k, image] of withBytes.entries()) {
      expect(sha256(entries[k].bytes)).toBe(image.contentHash);
      expect(entries[k].bytes.equals(image.bytes!)).toBe(true);
    }
    expect(entries.at(-1)!.bytes.toString('utf8')).toBe(`${fx.images[6].id}\tnot-in-storage\n${fx.images[5].id}\tno-file\n`);
    // Every image path of the JSON export is in the archive or listed as missing.
    const samples = (await (await download('llava.json')).json()) as { image: string | null }[];
    const names = new Set(entries.map((e) => e.name));
    for (const s of samples) if (s.image && s.image !== pathOf(fx.images[6])) expect(names.has(s.image)).toBe(true);
  });

  it('image archive over several pages of images: each listed once, by id', async () => {
    const bulk = await seedBulkDataset(app.ds, lab.id, { items: 300, images: 150, tag: 'pages' });
    const res = await download('images.tar', lab.keys.VIEWER, bulk);
    const extract = tar.extract();
    extract.end(Buffer.from(await res.arrayBuffer()));
    const names: string[] = [];
    let missing = '';
    for await (const entry of extract) {
      names.push(entry.header.name);
      for await (const chunk of entry) missing += (chunk as Buffer).toString('utf8');
    }
    // The bulk images have hashes but no bytes: all listed in MISSING.txt.
    expect(names).toEqual(['MISSING.txt']);
    const ids: { id: string }[] = await app.ds.query(`SELECT id FROM images WHERE project_id = $1 AND pair_id LIKE 'pages\\_%' ORDER BY id`, [lab.id]);
    expect(ids).toHaveLength(150);
    expect(missing).toBe(ids.map((r) => `${r.id}\tnot-in-storage\n`).join(''));
  });

  it('every role of the project may export; the Relay id and the UUID both address the dataset', async () => {
    for (const key of Object.values(lab.keys)) await download('jsonl', key);
    const res = await get(`/exports/datasets/${fx.datasetId}/jsonl`, lab.keys.CLINICIAN);
    expect(res.status).toBe(200);
    expect(jsonLines(await res.text())).toHaveLength(fx.candidates.length);
  });

  it('HEAD answers the headers without reading the dataset', async () => {
    const res = await get(datasetExportPath(fx.datasetId, 'trl.jsonl'), lab.keys.VIEWER, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toContain(`.trl.jsonl"`);
    expect(await res.text()).toBe('');
  });

  it("another project's key, an unknown id, a foreign Relay id or format answer 404; no key 401", async () => {
    for (const format of ['llava.json', 'jsonl', 'trl.jsonl', 'images.tar'] as const) {
      const res = await get(datasetExportPath(fx.datasetId, format), other.keys.OWNER);
      expect(res.status).toBe(404);
      const text = await res.text();
      expect(JSON.parse(text)).toEqual({ error: 'NOT_FOUND', message: 'Dataset not found' });
      expect(text).not.toContain(FIXTURE_DATASET_NAME);
    }
    expect((await get(datasetExportPath(crypto.randomUUID(), 'jsonl'), lab.keys.OWNER)).status).toBe(404);
    expect((await get(`/exports/datasets/not-an-id/jsonl`, lab.keys.OWNER)).status).toBe(404);
    const imageRelayId = Buffer.from(`Image:${fx.images[0].id}`).toString('base64url');
    expect((await get(`/exports/datasets/${imageRelayId}/jsonl`, lab.keys.OWNER)).status).toBe(404);
    const unknownFormat = await get(`/exports/datasets/${fx.datasetId}/csv`, lab.keys.OWNER);
    expect(unknownFormat.status).toBe(404);
    expect(await unknownFormat.json()).toEqual({ error: 'NOT_FOUND', message: 'Unknown export format' });
    const noKey = await get(datasetExportPath(fx.datasetId, 'jsonl'), null);
    expect(noKey.status).toBe(401);
    expect(((await noKey.json()) as { error: string }).error).toBe('UNAUTHENTICATED');
    expect((await get(datasetExportPath(fx.datasetId, 'jsonl'), 'bmv_not_a_key')).status).toBe(401);
  });

  it('a client that disconnects mid-download stops the read and gives its connection back', async () => {
    const bulk = await seedBulkDataset(app.ds, lab.id, { items: 5000, images: 50, tag: 'disconnect', preferences: true });
    const pool = (app.ds.driver as unknown as { master: Pool }).master;
    const exportQueries = async () =>
      Number(
        (
          await app.ds.query(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle' AND query LIKE '%FROM dataset_items di%'`,
          )
        )[0].n,
      );
    for (const format of ['llava.json', 'jsonl', 'trl.jsonl'] as const) {
      const abort = new AbortController();
      const res = await fetch(`${app.url}${datasetExportPath(bulk, format)}`, { headers: { authorization: `Bearer ${lab.keys.VIEWER}` }, signal: abort.signal });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      const first = await reader.read();
      expect((first.value as Uint8Array).length).toBeGreaterThan(0);
      abort.abort();
      await reader.cancel().catch(() => {});
      const deadline = Date.now() + 5000;
      while ((pool.totalCount - pool.idleCount > 0 || (await exportQueries()) > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(pool.totalCount - pool.idleCount).toBe(0);
      expect(await exportQueries()).toBe(0);
    }
    // The pool still serves complete exports afterwards.
    const res = await download('jsonl', lab.keys.VIEWER, bulk);
    let lines = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) for (const byte of chunk) if (byte === 10) lines++;
    expect(lines).toBe(5000);
  });

  it('caps the exports streaming at once per process: one more answers 503 with Retry-After until one ends', async () => {
    const bulk = await seedBulkDataset(app.ds, lab.id, { items: 5000, images: 50, tag: 'cap' });
    const open: { abort: AbortController; reader: ReadableStreamDefaultReader<Uint8Array> }[] = [];
    try {
      for (let i = 0; i < app.services.config.EXPORT_MAX_CONCURRENT; i++) {
        const abort = new AbortController();
        const res = await fetch(`${app.url}${datasetExportPath(bulk, 'jsonl')}`, { headers: { authorization: `Bearer ${lab.keys.VIEWER}` }, signal: abort.signal });
        expect(res.status).toBe(200);
        const reader = res.body!.getReader();
        await reader.read();
        open.push({ abort, reader });
      }
      const refused = await get(datasetExportPath(bulk, 'jsonl'), lab.keys.VIEWER);
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('5');
      expect(await refused.json()).toMatchObject({ error: 'RATE_LIMITED' });
    } finally {
      for (const { abort, reader } of open) {
        abort.abort();
        await reader.cancel().catch(() => {});
      }
    }
    const deadline = Date.now() + 5000;
    let status = 0;
    while (Date.now() < deadline) {
      const res = await get(datasetExportPath(bulk, 'llava.json'), lab.keys.VIEWER, { method: 'HEAD' });
      status = res.status;
      if (status === 200) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe(200);
  });
});
