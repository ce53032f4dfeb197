import crypto from 'node:crypto';
import tar from 'tar-stream';
import type { Pool } from 'pg';
import { startTestApp, createTestProject, TestApp, TestProject } from '../support/test-app';
import { DatasetFixture, FIXTURE_DATASET_NAME, FIXTURE_DATASET_VERSION, FixtureCandidate, seedBulkDataset, seedDatasetFixture } from '../support/dataset-fixture';
import { datasetExportPath } from '../../src/modules/datasets/dataset-exports.routes';
import type { StoredRound } from '../../src/modules/candidates/conversation';
import { gql } from '../support/graphql-client';
import { assertTrlVisionPreferenceRow } from '../support/trl-formats';

/** Built here on purpose rather than with the code under test. */
const EXT: Record<string, string> = { 'image/png': 'png', 'image/jpeg': 'jpg' };
const pathOf = (image: { contentHash: string | null; mimeType: string | null }) => (image.contentHash ? `images/${image.contentHash}.${EXT[image.mimeType!]}` : null);
/** The API's global id (`Node.id`), encoded here rather than with the code under test. */
const gid = (type: string, id: string) => Buffer.from(`${type}:${id}`, 'utf8').toString('base64url');
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
    expect(samples.map((s) => s.id)).toEqual(ranked.map((c) => gid('Candidate', c.id)));
    for (const [k, sample] of samples.entries()) {
      const c = ranked[k];
      expect(sample).toEqual({ id: gid('Candidate', c.id), image: pathOf(imageOf(c)), conversations: llavaTurns(c.rounds) });
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
    expect(records.map((r) => r.id)).toEqual(ranked.map((c) => gid('Candidate', c.id)));
    expect(records.map((r) => r.rank)).toEqual(ranked.map((c) => c.rank));
    const first = records[0];
    const c = ranked[0];
    expect(first).toEqual({
      id: gid('Candidate', c.id),
      image: pathOf(imageOf(c)),
      conversations: llavaTurns(c.rounds),
      candidate_uuid: c.id,
      rank: 1,
      score: 0.99,
      image_id: gid('Image', c.imageId),
      image_uuid: c.imageId,
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
    const singleAnswer = records.find((r) => r.candidate_uuid === fx.candidates[13].id);
    expect(singleAnswer).toMatchObject({ form: 'SINGLE_ANSWER', alternative_answers: [null, null, null, null] });
    const recordOnly = records.find((r) => r.image_uuid === fx.images[5].id);
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
      id: `${gid('Candidate', C[i].id)}:round:${round}`,
      candidate_id: gid('Candidate', C[i].id),
      candidate_uuid: C[i].id,
      other_candidate_id: null,
      other_candidate_uuid: null,
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
        id: `${gid('Candidate', C[7].id)}:vs:${gid('Candidate', C[6].id)}`,
        candidate_id: gid('Candidate', C[7].id),
        candidate_uuid: C[7].id,
        other_candidate_id: gid('Candidate', C[6].id),
        other_candidate_uuid: C[6].id,
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
        id: `${gid('Candidate', C[8].id)}:vs:${gid('Candidate', X.id)}`,
        candidate_id: gid('Candidate', C[8].id),
        candidate_uuid: C[8].id,
        other_candidate_id: gid('Candidate', X.id),
        other_candidate_uuid: X.id,
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

  it("TRL vision pairs: the same pairs in TRL's documented vision shape, an images column and typed content", async () => {
    const res = await download('trl-vision.jsonl');
    expect(res.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    expect(res.headers.get('content-disposition')).toContain('-v3.trl-vision.jsonl"');
    const rows = jsonLines(await res.text());
    const text = jsonLines(await (await download('trl.jsonl')).text());
    expect(rows.map((r) => r.id)).toEqual(text.map((r) => r.id));
    expect(rows.length).toBeGreaterThan(0);
    const plain = (messages: { role: string; content: { type: string; text?: string }[] }[]) =>
      messages.map((m) => ({ role: m.role, content: m.content.map((p) => (p.type === 'image' ? '<image>\n' : p.text)).join('') }));
    for (const [k, row] of rows.entries()) {
      assertTrlVisionPreferenceRow(row);
      const { prompt, chosen, rejected, image, ...rest } = text[k];
      expect(row.images).toEqual(image ? [image] : []);
      // Typed parts read back as the text format's messages: nothing lost or moved.
      expect({ prompt: plain(row.prompt), chosen: plain(row.chosen), rejected: plain(row.rejected) }).toEqual({ prompt, chosen, rejected });
      expect(row).toMatchObject(rest);
    }
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
    // The dataset card first, then images with bytes, by id.
    const withBytes = fx.images.filter((i) => i.bytes).sort((a, b) => (a.id < b.id ? -1 : 1));
    expect(entries.map((e) => e.name)).toEqual(['card.md', 'card.json', ...withBytes.map((i) => pathOf(i)), 'MISSING.txt']);
    for (const [k, image] of withBytes.entries()) {
      expect(sha256(entries[k + 2].bytes)).toBe(image.contentHash);
      expect(entries[k + 2].bytes.equals(image.bytes!)).toBe(true);
    }
    expect(entries[0].bytes.toString('utf8')).toBe(await (await download('card.md')).text());
    expect(entries[1].bytes.toString('utf8')).toBe(await (await download('card.json')).text());
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
      for await (const chunk of entry) if (entry.header.name === 'MISSING.txt') missing += (chunk as Buffer).toString('utf8');
    }
    // The bulk images have hashes but no bytes: all listed in MISSING.txt, after the card.
    expect(names).toEqual(['card.md', 'card.json', 'MISSING.txt']);
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

  describe('signed links', () => {
    const EXPORTS = `query($id: ID!) { node(id: $id) { ... on Dataset { exports { format url expiresAt } } } }`;
    const links = async (datasetId = fx.datasetId) => {
      const res = await gql(app.graphqlUrl, lab.keys.VIEWER, EXPORTS, { id: gid('Dataset', datasetId) });
      return res.data!.node.exports as { format: string; url: string; expiresAt: string }[];
    };
    /** The url's path and its two query parameters. */
    const parts = (url: string) => {
      const u = new URL(url);
      return { path: u.pathname, expires: u.searchParams.get('expires')!, signature: u.searchParams.get('signature')! };
    };
    const bare = (path: string) => fetch(`${app.url}${path}`);

    it('Dataset.exports gives every format a signed link that downloads without a header, until expiresAt', async () => {
      const ttl = app.services.config.SIGNED_URL_TTL_SECONDS;
      const before = Math.floor(Date.now() / 1000);
      const list = await links();
      const after = Math.floor(Date.now() / 1000);
      expect(list.map((l) => l.format).sort()).toEqual(['CARD_JSON', 'CARD_MD', 'IMAGES_TAR', 'JSONL', 'LLAVA_JSON', 'TRL_JSONL', 'TRL_VISION_JSONL']);
      for (const link of list) {
        expect(link.url.startsWith(`${app.url}/exports/datasets/${gid('Dataset', fx.datasetId)}/`)).toBe(true);
        const { expires } = parts(link.url);
        expect(Number(expires)).toBeGreaterThanOrEqual(before + ttl);
        expect(Number(expires)).toBeLessThanOrEqual(after + ttl);
        expect(new Date(link.expiresAt).getTime()).toBe(Number(expires) * 1000);
        const signed = await fetch(link.url);
        expect(signed.status).toBe(200);
        const withKey = await get(parts(link.url).path, lab.keys.VIEWER);
        expect(Buffer.from(await signed.arrayBuffer()).equals(Buffer.from(await withKey.arrayBuffer()))).toBe(true);
      }
    });

    it("a link changed in its dataset, format, expiry or signature answers 403; one for project A's dataset opens nothing of project B", async () => {
      const theirs = await seedBulkDataset(app.ds, other.id, { items: 3, images: 2, tag: 'signed-other' });
      const jsonl = (await links()).find((l) => l.format === 'JSONL')!;
      const { path, expires, signature } = parts(jsonl.url);
      const q = (e: string, sig: string) => `?expires=${e}&signature=${sig}`;
      const tampered = [
        datasetExportPath(theirs, 'jsonl') + q(expires, signature),
        datasetExportPath(fx.emptyDatasetId, 'jsonl') + q(expires, signature),
        datasetExportPath(fx.datasetId, 'llava.json') + q(expires, signature),
        path + q(String(Number(expires) + 3600), signature),
        path + q(expires, signature.slice(0, -2) + (signature.endsWith('AA') ? 'BB' : 'AA')),
        path + q(`${expires}.5`, signature),
        path + `?expires=${expires}`,
        path + `?signature=${signature}`,
      ];
      for (const link of tampered) {
        const res = await bare(link);
        expect([link, res.status]).toEqual([link, 403]);
        expect(await res.json()).toEqual({ error: 'FORBIDDEN', message: 'The link is invalid' });
      }
      // Project B's own link does not open project A's dataset either, with or without B's key.
      const theirLinks = (await gql(app.graphqlUrl, other.keys.VIEWER, `query($id: ID!) { node(id: $id) { ... on Dataset { exports { format url } } } }`, { id: gid('Dataset', theirs) })).data!.node.exports;
      const theirJsonl = parts(theirLinks.find((l: { format: string }) => l.format === 'JSONL').url);
      expect((await fetch(`${app.url}${theirJsonl.path}?expires=${theirJsonl.expires}&signature=${theirJsonl.signature}`)).status).toBe(200);
      expect((await bare(path + q(theirJsonl.expires, theirJsonl.signature))).status).toBe(403);
      expect((await get(path + q(theirJsonl.expires, theirJsonl.signature), other.keys.OWNER)).status).toBe(403);
    });

    it('an expired link answers 410 Gone with a JSON error; the API key path still works', async () => {
      const path = datasetExportPath(fx.datasetId, 'jsonl');
      const ttl = app.services.config.SIGNED_URL_TTL_SECONDS;
      const { expires, signature } = app.services.signer.sign(path, Date.now() - (ttl + 60) * 1000);
      const res = await bare(`${path}?expires=${expires}&signature=${signature}`);
      expect(res.status).toBe(410);
      expect(await res.json()).toEqual({ error: 'LINK_EXPIRED', message: 'The link has expired; ask Dataset.exports for a new one' });
      expect((await get(path, lab.keys.VIEWER)).status).toBe(200);
    });
  });

  describe('dataset card', () => {
    let card: any;
    let markdown: string;

    beforeAll(async () => {
      // Provenance as the pipeline records it: a generation run (cost, tokens, demonstrations per
      // candidate) and a rating run (the judges' preferences), written into the fixture's rows.
      const run = async (kind: string, cost: string) =>
        (await app.ds.query(`INSERT INTO runs (project_id, kind, status, cost_usd) VALUES ($1, $2, 'SUCCEEDED', $3) RETURNING id`, [lab.id, kind, cost]))[0].id as string;
      const generation = await run('GENERATION', '1.250000');
      const rating = await run('RATING', '0.420000');
      const demos = [crypto.randomUUID(), crypto.randomUUID()];
      for (const [i, c] of fx.candidates.entries()) {
        await app.ds.query(
          `UPDATE candidates SET run_id = $2, cost_usd = $3, prompt_tokens = $4, completion_tokens = $5, demonstration_ids = $6::uuid[], prompt_template_version = $7 WHERE id = $1`,
          [c.id, i % 3 === 0 ? null : generation, (0.001 * (i + 1)).toFixed(6), 100 + i, 40 + 2 * i, i % 2 ? demos : [demos[0]], i % 4 === 0 ? 'generation/v2' : 'generation/v1'],
        );
      }
      await app.ds.query(`UPDATE preferences SET run_id = $2, rubric_version = 'rating/v1' WHERE project_id = $1 AND source = 'MODEL' AND judge_model = 'judge-1'`, [lab.id, rating]);
      card = await (await download('card.json')).json();
      markdown = await (await download('card.md')).text();
    });

    const inDataset = `candidate_id IN (SELECT candidate_id FROM dataset_items WHERE dataset_id = $1)`;

    it("its numbers equal sums taken straight from the tables", async () => {
      const [dataset] = await app.ds.query(`SELECT name, version, item_count, content_hash, counts_by_modality, rule FROM datasets WHERE id = $1`, [fx.datasetId]);
      expect(card.dataset).toMatchObject({ id: gid('Dataset', fx.datasetId), uuid: fx.datasetId, name: dataset.name, version: dataset.version, itemCount: dataset.item_count, contentHash: dataset.content_hash });
      expect(card.composition.byModality).toEqual(dataset.counts_by_modality);
      expect(card.selection.rule).toEqual(dataset.rule);

      const [totals] = await app.ds.query(
        `SELECT count(*)::int AS n, sum(cost_usd)::float8 AS cost, sum(prompt_tokens)::int AS pt, sum(completion_tokens)::int AS ct FROM candidates WHERE id IN (SELECT candidate_id FROM dataset_items WHERE dataset_id = $1)`,
        [fx.datasetId],
      );
      expect(card.generation.totals.candidates).toBe(fx.candidates.length);
      expect(card.generation.totals).toEqual({ candidates: totals.n, promptTokens: totals.pt, completionTokens: totals.ct, costUsd: expect.closeTo(totals.cost, 9) });
      expect(totals.cost).toBeGreaterThan(0);
      const groups = await app.ds.query(
        `SELECT run_id, model, prompt_template_version AS v, count(*)::int AS n, sum(cost_usd)::float8 AS cost FROM candidates WHERE id IN (SELECT candidate_id FROM dataset_items WHERE dataset_id = $1) GROUP BY 1, 2, 3`,
        [fx.datasetId],
      );
      expect(groups.length).toBeGreaterThan(1);
      expect(card.generation.groups).toHaveLength(groups.length);
      for (const g of groups) {
        const found = card.generation.groups.find((x: any) => x.runUuid === g.run_id && x.model === g.model && x.promptTemplateVersion === g.v);
        expect(found).toMatchObject({ runId: g.run_id ? gid('Run', g.run_id) : null, candidates: g.n, costUsd: expect.closeTo(g.cost, 9) });
      }
      const demos = await app.ds.query(`SELECT d, count(*)::int AS n FROM candidates, unnest(demonstration_ids) d WHERE id IN (SELECT candidate_id FROM dataset_items WHERE dataset_id = $1) GROUP BY d`, [fx.datasetId]);
      expect(card.generation.demonstrations.map((d: any) => [d.uuid, d.candidates, d.id]).sort()).toEqual(demos.map((d: any) => [d.d, d.n, gid('Demonstration', d.d)]).sort());

      const judges = await app.ds.query(
        `SELECT p.judge_model AS judge, p.rubric_version AS rubric, p.run_id, count(*)::int AS n, count(DISTINCT p.candidate_id)::int AS c, r.cost_usd::float8 AS cost
           FROM preferences p LEFT JOIN runs r ON r.id = p.run_id WHERE p.source = 'MODEL' AND p.${inDataset} GROUP BY 1, 2, 3, 6`,
        [fx.datasetId],
      );
      expect(card.rating.models.map((m: any) => [m.judgeModel, m.rubricVersion, m.runUuid, m.preferences, m.candidatesRated, m.runCostUsd]).sort()).toEqual(
        judges.map((j: any) => [j.judge, j.rubric, j.run_id, j.n, j.c, j.cost]).sort(),
      );
      expect(judges.some((j: any) => j.cost === 0.42)).toBe(true);
      const [clinicians] = await app.ds.query(
        `SELECT count(*)::int AS n, count(DISTINCT annotator_id)::int AS a, count(DISTINCT candidate_id)::int AS c FROM preferences WHERE source = 'CLINICIAN' AND ${inDataset}`,
        [fx.datasetId],
      );
      expect(clinicians.n).toBeGreaterThan(0);
      expect(card.rating.clinicians).toEqual({ preferences: clinicians.n, annotators: clinicians.a, candidatesJudged: clinicians.c });

      const sources = await app.ds.query(
        `SELECT i.source::text AS source, count(*)::int AS n FROM dataset_items di JOIN candidates c ON c.id = di.candidate_id JOIN images i ON i.id = c.image_id WHERE di.dataset_id = $1 GROUP BY 1`,
        [fx.datasetId],
      );
      expect(card.composition.bySource).toEqual(Object.fromEntries(sources.map((r: any) => [r.source, r.n])));
      const [{ images }] = await app.ds.query(`SELECT count(DISTINCT c.image_id)::int AS images FROM dataset_items di JOIN candidates c ON c.id = di.candidate_id WHERE di.dataset_id = $1`, [fx.datasetId]);
      expect(card.composition.distinctImages).toBe(images);
    });

    it('says what is not known yet: selector alignment not evaluated, clinician agreement not measured', () => {
      expect(card.selection).toMatchObject({ alignmentMetrics: null, alignmentStatus: 'not evaluated' });
      expect(card.clinicianAgreement).toEqual({ value: null, status: 'not yet measured' });
      expect(markdown).toContain('Alignment metrics: not evaluated.');
      expect(markdown).toContain('Clinician agreement: not yet measured.');
    });

    it('card.md shows the same data as card.json', () => {
      const t = card.generation.totals;
      expect(markdown).toContain(`# Dataset card: ${FIXTURE_DATASET_NAME} v${FIXTURE_DATASET_VERSION}`);
      expect(markdown).toContain(`| items | ${card.dataset.itemCount} |`);
      expect(markdown).toContain(`Total: ${t.candidates} candidates, ${t.promptTokens} prompt and ${t.completionTokens} completion tokens, $${t.costUsd.toFixed(4)}.`);
      for (const g of card.generation.groups) expect(markdown).toContain(`| ${g.runId ?? '—'} | ${g.model ?? '—'} | ${g.promptTemplateVersion ?? '—'} | ${g.candidates} |`);
      for (const m of card.rating.models) expect(markdown).toContain(`| ${m.runId ?? '—'} | ${m.judgeModel} | ${m.rubricVersion ?? '—'} | ${m.preferences} | ${m.candidatesRated} |`);
      for (const d of card.generation.demonstrations) expect(markdown).toContain(`| ${d.id} | ${d.candidates} |`);
      expect(markdown).toContain(`Clinicians: ${card.rating.clinicians.preferences} preferences by ${card.rating.clinicians.annotators} annotators`);
    });
  });
});
