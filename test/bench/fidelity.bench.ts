/**
 * npm run bench:fidelity — the paper's claim in miniature (issue 11): does a selector trained on a
 * mix of many model-judge pairs and few clinician pairs weighted w > 1 agree with clinicians more
 * than one trained on either source alone?
 *
 * A synthetic world with a known latent clinician utility, run through the real service:
 *   - IMAGES noise figures uploaded; a GENERATION run against the fake OpenAI-compatible server
 *     (in this process) writes SAMPLES TWO_ANSWERS candidates per image, ROUNDS rounds each. Every
 *     answer names K of the FEATURES findings; its utility is u = Σ w_f over the findings it names,
 *     the weights w drawn once from the seed (the world's fixed function of its features).
 *   - A RATING run: the fake judge rates every answer 0-10 from a biased, noisy view of the same
 *     utility (weights correlated RHO with the clinicians', plus per-answer noise): about 1,800
 *     model-rating pairs at the default size, which fits a few minutes on a shared 2-core machine;
 *     the issue's tens of thousands need BENCH_IMAGES=500 BENCH_SAMPLES=10 or so (rating time grows with it).
 *   - CLINICIAN_PAIRS clinician choices over GraphQL (recordPreference, PAIRWISE), each a
 *     Bradley-Terry draw on the true utility with temperature TAU: noisy, few.
 *   - TRAINING runs (startTrainingRun, the training module's contract) per seed: model pairs only,
 *     clinician pairs only, and a sweep over w ∈ {0.5, 1, 2, 4, 8, 16}; then one EVALUATION run per
 *     seed measures all of them and the judge on the sweep's held-out clinician pairs.
 * Prints, per configuration, the alignment on held-out clinician pairs over SEEDS seeds (mean, sd,
 * min, max), the judge's, and the true-utility ceiling (u itself as the scorer on the same pairs:
 * the clinicians' own noise caps every selector there).
 *
 * Without the training module (no startTrainingRun in the schema) it measures the judge, the
 * reference selector and the ceiling only, and says so.
 *
 * Environment: DATABASE_URL (else an embedded Postgres), BENCH_IMAGES (default 100), BENCH_SAMPLES
 * (5), BENCH_ROUNDS (4), BENCH_CLINICIAN_PAIRS (400), BENCH_SEEDS (3), BENCH_EPOCHS (20),
 * BENCH_BATCH_SIZE (64), BENCH_HIDDEN (128,128: hidden widths of the trained head), BENCH_RHO (0.5),
 * BENCH_JUDGE_NOISE (1.0), BENCH_TAU (0.5). Training runs use the project's latest encoder: the
 * reference encoder, registered over GraphQL multipart at the start.
 */
import 'reflect-metadata';
import crypto from 'node:crypto';
import os from 'node:os';
import sharp from 'sharp';
import { benchDatabase } from './bench-database';
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { START_GENERATION, waitForRun } from '../support/pipeline-fixture';
import { referenceSelectorUpload, registerSelector } from '../support/scoring-fixture';
import { referenceEncoderUpload, registerEncoder } from '../support/training-fixture';
import { ChatBehaviour, FakeOpenAIServer } from '../fakes/openai-server';
import { fromGlobalId, toGlobalId } from '../../src/platform/ids';
import { seededRandom } from '../../src/modules/evaluation/bootstrap';

const IMAGES = Number(process.env.BENCH_IMAGES ?? 100);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const CLINICIAN_PAIRS = Number(process.env.BENCH_CLINICIAN_PAIRS ?? 400);
const SEEDS = Number(process.env.BENCH_SEEDS ?? 3);
const EPOCHS = Number(process.env.BENCH_EPOCHS ?? 20);
const BATCH = Number(process.env.BENCH_BATCH_SIZE ?? 64);
/** A smaller head than the paper's 512-512-512: the world's utility is linear in 16 findings, and the bench stays within minutes. */
const HIDDEN = (process.env.BENCH_HIDDEN ?? '128,128').split(',').map(Number);
const RHO = Number(process.env.BENCH_RHO ?? 0.5);
const JUDGE_NOISE = Number(process.env.BENCH_JUDGE_NOISE ?? 1.0);
const TAU = Number(process.env.BENCH_TAU ?? 0.5);
const WEIGHTS = [0.5, 1, 2, 4, 8, 16];
const WORLD_SEED = 20240613;
const K = 4;

/** Findings an answer can name: single WordPiece tokens of the BERT vocabulary, none used in captions, questions or the rubric. */
const FEATURES = ['nodule', 'effusion', 'fracture', 'edema', 'stenosis', 'hemorrhage', 'abscess', 'cyst', 'fibrosis', 'tumor', 'lesion', 'infection', 'swelling', 'bleeding', 'calcium', 'fluid'];

// ---------------------------------------------------------------------------------------------
// The world

const worldRandom = seededRandom(WORLD_SEED);
const gaussian = (random: () => number) => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
/** Clinicians' weights (the latent utility) and the judge's biased view of them. */
const TRUE_WEIGHTS = FEATURES.map(() => gaussian(worldRandom));
const JUDGE_WEIGHTS = TRUE_WEIGHTS.map((w) => RHO * w + Math.sqrt(1 - RHO * RHO) * gaussian(worldRandom));

const FINDINGS = /Findings: ([a-z ]+)\./;
const featuresOf = (answer: string): number[] => (FINDINGS.exec(answer)?.[1] ?? '').split(' ').map((w) => FEATURES.indexOf(w)).filter((i) => i >= 0);
const utility = (answer: string) => featuresOf(answer).reduce((sum, f) => sum + TRUE_WEIGHTS[f], 0);

function hashRandom(text: string): () => number {
  return seededRandom(crypto.createHash('sha256').update(text).digest().readUInt32LE(0));
}

/** K distinct findings, drawn from a generator seeded by the call. */
function answerText(random: () => number): string {
  const picked = new Set<number>();
  while (picked.size < K) picked.add(Math.floor(random() * FEATURES.length));
  return `Findings: ${[...picked].sort((a, b) => a - b).map((f) => FEATURES[f]).join(' ')}.`;
}

const QUESTIONS = ['What does the figure show?', 'What should a reader notice first?', 'What would a clinician report?', 'What else is visible?', 'What is the main abnormality?', 'What is the overall impression?'];

/** Generation calls per prompt: the k-th call for an image's prompt gets the k-th conversation, however the calls interleave. */
const generationCalls = new Map<string, number>();
/** The fake server: a generation reply in the TWO_ANSWERS form, or the judge's rating of one answer. */
function worldChat(body: any): ChatBehaviour {
  const system = (body?.messages ?? []).filter((m: any) => m.role === 'system').map((m: any) => String(m.content)).join('\n');
  const lastUser = body.messages.at(-1);
  const text = typeof lastUser.content === 'string' ? lastUser.content : (lastUser.content as any[]).filter((p) => p.type === 'text').map((p) => p.text).join('\n');
  if (system.includes('You judge')) {
    const answer = /\n\nAnswer: ([\s\S]*?)\n\nReply with JSON only/.exec(text)?.[1] ?? text;
    const noise = gaussian(hashRandom(`judge:${text}`)) * JUDGE_NOISE;
    const view = featuresOf(answer).reduce((sum, f) => sum + JUDGE_WEIGHTS[f], 0) + noise;
    const score = Math.max(0, Math.min(10, Math.round(5 + 1.5 * view)));
    return { reply: JSON.stringify({ score, rationale: 'Judged on the findings named.' }) };
  }
  const call = generationCalls.get(text) ?? 0;
  generationCalls.set(text, call + 1);
  const random = hashRandom(`generation:${call}:${text}`);
  const lines: string[] = [];
  for (let r = 0; r < ROUNDS; r++) lines.push(`User: ${QUESTIONS[r % QUESTIONS.length]}`, `Answer A: ${answerText(random)}`, `Answer B: ${answerText(random)}`);
  return { reply: lines.join('\n') };
}

async function noiseImage(seed: number): Promise<Buffer> {
  const raw = Buffer.alloc(32 * 32 * 3);
  const random = seededRandom(seed);
  for (let i = 0; i < raw.length; i++) raw[i] = Math.floor(random() * 256);
  return sharp(raw, { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer();
}

// ---------------------------------------------------------------------------------------------
// GraphQL

const START_RATING = `mutation($input: StartRatingRunInput!) { startRatingRun(input: $input) { run { id } userErrors { field message code } } }`;
const RECORD = `mutation($input: RecordPreferenceInput!) { recordPreference(input: $input) { preference { id } userErrors { field message code } } }`;
const START_EVALUATION = `mutation($input: StartEvaluationRunInput!) { startEvaluationRun(input: $input) { run { id } userErrors { field message code } } }`;
const COMPARISON = `query($id: ID) { selectorComparison(evaluationRunId: $id) { heldOutPairs heldOutImages rows { evaluation { subject judgeModel pairs selectorModel { id name } alignmentRate { value low high } auc { value } } } } }`;
const START_TRAINING = `mutation($input: StartTrainingRunInput!) { startTrainingRun(input: $input) { run { id } userErrors { field message code } } }`;
const TRAINING_RESULT = `query($id: ID!) { node(id: $id) { ... on Run { id status lastError training { validationImageIds pairCounts { model clinician validation } selectors(first: 20) { edges { node { id name version clinicianWeight } } } } } } }`;

async function call(app: TestApp, key: string, query: string, variables: Record<string, unknown>, field: string): Promise<any> {
  const res = await gql(app.graphqlUrl, key, query, variables);
  if (res.errors) throw new Error(`${field}: ${JSON.stringify(res.errors)}`);
  const payload = res.data![field];
  if (payload?.userErrors?.length) throw new Error(`${field}: ${JSON.stringify(payload.userErrors)}`);
  return payload;
}

async function hasMutation(app: TestApp, key: string, name: string): Promise<boolean> {
  const res = await gql(app.graphqlUrl, key, `{ __schema { mutationType { fields { name } } } }`, {});
  return (res.data?.__schema.mutationType.fields ?? []).some((f: { name: string }) => f.name === name);
}

// ---------------------------------------------------------------------------------------------
// Statistics

function summary(values: number[]): string {
  if (!values.length) return 'n/a';
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const sd = values.length > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1)) : 0;
  const pct = (v: number) => (100 * v).toFixed(1);
  return `${pct(mean).padStart(5)} ± ${pct(sd).padStart(4)}  [${pct(Math.min(...values))}, ${pct(Math.max(...values))}]`;
}

interface ClinicianPair {
  candidateId: string;
  imageId: string;
  roundIndex: number;
  preferred: string;
  rejected: string;
}

/** True-utility ceiling: u itself as the scorer on the held-out clinician pairs (ties 1/2). */
function ceiling(pairs: ClinicianPair[], heldOut: ReadonlySet<string>): number {
  const held = pairs.filter((p) => heldOut.has(p.imageId));
  const agreed = held.reduce((sum, p) => sum + (utility(p.preferred) > utility(p.rejected) ? 1 : utility(p.preferred) === utility(p.rejected) ? 0.5 : 0), 0);
  return agreed / held.length;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const stopDatabase = await benchDatabase();
  const fake = await FakeOpenAIServer.start({ recordBodies: false });
  fake.defaultChat = worldChat;
  const app = await startTestApp({ OPENAI_API_KEY: 'sk-bench', OPENAI_BASE_URL: fake.baseUrl, LLM_RETRY_BASE_MS: '20', LLM_TOKENS_PER_MINUTE: '1000000000', LLM_REQUESTS_PER_MINUTE: '1000000' }, { worker: true });
  const started = performance.now();
  const load = os.loadavg()[0];
  try {
    const lab = await createTestProject(app, 'fidelity');
    const curator = lab.keys.CURATOR;

    // Images and candidates.
    const imageIds: string[] = [];
    for (let i = 0; i < IMAGES; i++) {
      const image = await app.services.images.upload(lab.ctx(), await noiseImage(i + 1), `figure-${i}.png`, { caption: `Synthetic figure number ${i + 1} of the benchmark world.`, mentions: [] });
      imageIds.push(image.id);
    }
    const generation = await call(app, curator, START_GENERATION, { input: { images: { imageIds: imageIds.map((id) => toGlobalId('Image', id)) }, samplesPerImage: SAMPLES, form: 'TWO_ANSWERS', minRounds: ROUNDS, demonstrationsPerPrompt: 0, seed: 1, limits: { concurrency: 16 } } }, 'startGenerationRun');
    const generated = await waitForRun(app, curator, generation.run.id, 600_000);
    const candidates = await app.services.candidates.conversations(lab.ctx(), (await app.ds.query(`SELECT id FROM candidates WHERE project_id = $1 AND status = 'OK'`, [lab.id])).map((r: { id: string }) => r.id));
    console.log(`world: ${IMAGES} images, ${candidates.length} candidates (generation ${generated.status}), ${ROUNDS} rounds × 2 answers, ${FEATURES.length} findings, ${K} per answer; judge weights correlate ${RHO} with the clinicians', noise ${JUDGE_NOISE}; clinician temperature ${TAU}`);

    // The judge rates every answer.
    const rating = await call(app, curator, START_RATING, { input: { generationRunId: generation.run.id, limits: { concurrency: 16 } } }, 'startRatingRun');
    const rated = await waitForRun(app, curator, rating.run.id, 1_200_000);
    const [{ model_pairs }] = await app.ds.query(
      `SELECT count(*)::int AS model_pairs FROM preferences a JOIN preferences b ON a.candidate_id = b.candidate_id AND a.round_index = b.round_index AND a.answer_index = 0 AND b.answer_index = 1
        WHERE a.project_id = $1 AND a.source = 'MODEL' AND b.source = 'MODEL' AND a.rating <> b.rating`,
      [lab.id],
    );
    console.log(`judge: ${rated.done} answers rated (${rated.status}), ${model_pairs} model-rating pairs (equal ratings make none)`);

    // Clinicians choose between the two answers of randomly drawn rounds.
    const random = seededRandom(WORLD_SEED + 1);
    // In a stable order (image, then the round's text), so the same seed draws the same rounds whatever the candidates' ids.
    const imageOrder = new Map(imageIds.map((id, i) => [id, i]));
    const rounds = candidates
      .flatMap((c) => c.rounds.map((round, roundIndex) => ({ c, round, roundIndex, key: `${String(imageOrder.get(c.imageId)).padStart(6, '0')}|${roundIndex}|${round.answers.join('|')}` })))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (let i = rounds.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [rounds[i], rounds[j]] = [rounds[j], rounds[i]];
    }
    const clinicianPairs: ClinicianPair[] = [];
    for (const { c, round, roundIndex } of rounds.slice(0, CLINICIAN_PAIRS)) {
      const [a, b] = round.answers;
      const pA = 1 / (1 + Math.exp(-(utility(a) - utility(b)) / TAU));
      const choice = random() < pA ? 'A' : 'B';
      await call(app, lab.keys.CLINICIAN, RECORD, { input: { candidateId: toGlobalId('Candidate', c.id), kind: 'PAIRWISE', roundIndex, choice } }, 'recordPreference');
      clinicianPairs.push({ candidateId: c.id, imageId: c.imageId, roundIndex, preferred: choice === 'A' ? a : b, rejected: choice === 'A' ? b : a });
    }
    const consistent = clinicianPairs.filter((p) => utility(p.preferred) > utility(p.rejected)).length;
    console.log(`clinicians: ${clinicianPairs.length} pairwise choices over GraphQL; ${((100 * consistent) / clinicianPairs.length).toFixed(1)} % agree with the true utility`);

    // Registration is idempotent (same files, same version): one retry covers a keep-alive socket the server closed as the upload began.
    const retried = async <T>(work: () => Promise<T>): Promise<T> => work().catch(async () => { await new Promise((r) => setTimeout(r, 500)); return work(); });
    const reference = await retried(() => registerSelector(app, curator, 'reference', referenceSelectorUpload()));
    const referenceId = reference.data!.registerSelectorModel.selectorModel.id;
    const training = await hasMutation(app, curator, 'startTrainingRun');
    if (!training) console.log('\nstartTrainingRun is not in this build: measuring the judge, the untrained reference selector and the ceiling only.');
    else {
      const encoder = await retried(() => registerEncoder(app, curator, 'reference-encoder', referenceEncoderUpload()));
      if (encoder.errors || encoder.data!.registerEncoderModel.userErrors.length) throw new Error(`registerEncoderModel: ${JSON.stringify(encoder.errors ?? encoder.data!.registerEncoderModel.userErrors)}`);
    }
    if (training) console.log(`training: head ${HIDDEN.join('-')}, ${EPOCHS} epochs, batches of ${BATCH}, pairwise logistic loss, validation fraction 0.2, the reference encoder`);

    const results = new Map<string, number[]>();
    const add = (label: string, value: number | null | undefined) => {
      if (value == null) return;
      results.set(label, [...(results.get(label) ?? []), value]);
    };
    const clinicianImages = [...new Set(clinicianPairs.map((p) => p.imageId))].sort();
    for (let seed = 1; seed <= SEEDS; seed++) {
      const selectorIds = [referenceId];
      const labels = new Map<string, string>([[referenceId, 'reference (untrained)']]);
      let heldOut: string[];
      if (training) {
        const common = { selectorName: `fidelity-s${seed}`, seed, validationFraction: 0.2, epochs: EPOCHS, batchSize: BATCH, hiddenSizes: HIDDEN };
        const configs = [
          { label: 'model only', input: { ...common, selectorName: `model-only-s${seed}`, includeClinicianPairs: false } },
          { label: 'clinician only', input: { ...common, selectorName: `clinician-only-s${seed}`, includeModelPairs: false, clinicianWeight: 1 } },
          { label: 'mixed', input: { ...common, selectorName: `mixed-s${seed}`, clinicianWeights: WEIGHTS } },
        ];
        const validation: string[][] = [];
        for (const config of configs) {
          const t0 = performance.now();
          const run = (await call(app, curator, START_TRAINING, { input: config.input }, 'startTrainingRun')).run;
          const ended = await waitForRun(app, curator, run.id, 1_800_000);
          const detail = (await gql(app.graphqlUrl, curator, TRAINING_RESULT, { id: run.id })).data!.node;
          if (ended.status !== 'SUCCEEDED') throw new Error(`training ${config.label} seed ${seed}: ${ended.status} ${detail?.lastError}`);
          validation.push([...detail.training.validationImageIds].sort());
          for (const { node: selector } of detail.training.selectors.edges) {
            selectorIds.push(selector.id);
            labels.set(selector.id, config.label === 'mixed' ? `mixed w=${selector.clinicianWeight}` : config.label);
          }
          console.log(`seed ${seed}: trained ${config.label} in ${((performance.now() - t0) / 1000).toFixed(1)} s (pairs ${JSON.stringify(detail.training.pairCounts)})`);
        }
        if (validation.some((v) => JSON.stringify(v) !== JSON.stringify(validation[2]))) console.log(`seed ${seed}: WARNING the training runs held out different images; evaluating on the sweep's`);
        heldOut = validation[2].map((id) => fromGlobalId(id)?.id ?? id);
      } else {
        // The validation split the training module draws: 20 % of the clinician pairs' images, by seed.
        const shuffled = [...clinicianImages];
        const r = seededRandom(seed);
        for (let i = shuffled.length - 1; i > 0; i--) {
          const j = Math.floor(r() * (i + 1));
          [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
        }
        heldOut = shuffled.slice(0, Math.round(0.2 * shuffled.length));
      }
      const evaluation = await call(
        app,
        curator,
        START_EVALUATION,
        { input: { selectorIds, includeJudge: true, imageIds: heldOut.map((id) => toGlobalId('Image', id)), bootstrapSamples: 200, seed } },
        'startEvaluationRun',
      );
      const ended = await waitForRun(app, curator, evaluation.run.id, 600_000);
      const table = (await gql(app.graphqlUrl, lab.keys.VIEWER, COMPARISON, { id: evaluation.run.id })).data!.selectorComparison;
      if (ended.status !== 'SUCCEEDED') throw new Error(`evaluation seed ${seed}: ${ended.status}`);
      for (const { evaluation: row } of table.rows) add(row.subject === 'JUDGE' ? 'model judge (ratings)' : labels.get(row.selectorModel.id)!, row.alignmentRate.value);
      add('true-utility ceiling', ceiling(clinicianPairs, new Set(heldOut)));
      console.log(`seed ${seed}: evaluated on ${table.heldOutPairs} held-out clinician pairs over ${table.heldOutImages} images`);
    }

    console.log(`\nalignment with clinicians on held-out pairs, % (mean ± sd [min, max] over ${SEEDS} seeds)`);
    const order = ['model only', 'clinician only', ...WEIGHTS.map((w) => `mixed w=${w}`), 'model judge (ratings)', 'reference (untrained)', 'true-utility ceiling'];
    for (const label of order) if (results.has(label)) console.log(`  ${label.padEnd(24)} ${summary(results.get(label)!)}`);
    const mean = (label: string) => {
      const v = results.get(label);
      return v?.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
    };
    const best = Math.max(mean('model only') ?? -1, mean('clinician only') ?? -1);
    const winners = WEIGHTS.filter((w) => w > 1 && (mean(`mixed w=${w}`) ?? -1) > best);
    if (training) console.log(`\npaper's claim (mixing with w > 1 beats both sources alone, on the mean): ${winners.length ? `holds for w ∈ {${winners.join(', ')}}` : 'does not hold here'}`);
    console.log(`\nwall time ${((performance.now() - started) / 1000).toFixed(0)} s; machine: ${os.cpus().length} cores, load average ${load.toFixed(2)} at start, ${os.loadavg()[0].toFixed(2)} at the end`);
  } finally {
    await app.stop();
    await fake.close();
    await stopDatabase();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
