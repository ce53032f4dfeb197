/**
 * npm run bench:routing — what routing VALUE buys (issue 12): the selector's alignment with
 * clinicians after N clinician labels handed out by VALUE versus RANDOM, for several N and seeds,
 * and how many labels VALUE saves at equal alignment.
 *
 * The synthetic world (simple, made up here; no database, no LLM):
 * - candidates with D standard-normal features (a stand-in for joined image + text embeddings);
 * - a latent clinician utility u = w·x + a mild interaction, the truth the selector should learn;
 * - a noisy, partial model judge: it sees the first JUDGE_SEEN features with the clinicians' weights,
 *   puts its own (wrong) weights on the others, adds noise, and answers a 0-10 rating;
 * - the initial selector: trainHead on model-preference pairs only (pairs of candidates whose judge
 *   ratings differ by ≥ 2), as a project has before any clinician works;
 * - the latest dataset rule keeps the initial selector's top TOP_FRACTION: its cut is the threshold;
 * - a clinician label is the paper's ACCEPTANCE: accepted iff u + noise is above the population's
 *   (1 − TOP_FRACTION) quantile; clinician pairs are accepted vs rejected labelled candidates, each
 *   labelled candidate paired with up to PAIRS_PER_LABEL of the other side, with weight CLINICIAN_WEIGHT.
 * Routing VALUE takes the N pool candidates of highest annotationValueOf priority (the very function
 * routing-value.ts uses: the order by selector/judge rank disagreement + threshold proximity,
 * interleaved with a pseudo-random order) computed once, as a campaign's item priority is computed
 * once at creation; RANDOM takes N at random. Also run: the value alone (the previous product
 * formula), each signal alone, and the value round-robin over 10 strata of the selector's score. The selector is
 * retrained (same seed, same model pairs) with those clinician pairs added, and its alignment is
 * measured on held-out candidate pairs ordered by the true utility (the "held-out clinician pairs").
 * "Labels saved": the N that RANDOM needs to reach VALUE's alignment (linear interpolation on the N
 * grid, mean over seeds) minus VALUE's N; negative when VALUE needs more. The two signals are also
 * run alone (disagreement only, threshold only), and besides the alignment on random held-out pairs
 * the table gives the selection precision at the rule's cut, which is what the threshold signal aims at.
 *
 * Not a timing benchmark: the figures are alignments, so machine load changes only how long it takes.
 * Environment: BENCH_SEEDS (default 10), BENCH_NS (default "25,50,100,200,400"), BENCH_POOL (1000),
 * BENCH_DEMOS (0: demonstration labels the initial selector already learned from).
 */
import os from 'node:os';
import { annotationValueOf } from '../../src/modules/annotation/annotation-value';
import { HeadScorer, PreferencePairs, trainHead, TrainingConfig } from '../../src/modules/training/head-trainer';
import { HeadParameters } from '../../src/modules/training/head-graph';
import { seededRandom } from '../../src/modules/training/random';
import { alignmentRate, PreferencePair } from '../../src/modules/evaluation';

const SEEDS = Number(process.env.BENCH_SEEDS ?? 10);
const NS = (process.env.BENCH_NS ?? '25,50,100,200,400').split(',').map(Number);
const POOL = Number(process.env.BENCH_POOL ?? 1000);
/** Clinician-labelled candidates the initial selector already learned from (stage 1's demonstrations); 0 = judge pairs only. */
const DEMOS = Number(process.env.BENCH_DEMOS ?? 0);
const HELD_OUT = 1000;
const D = 16;
const JUDGE_SEEN = 10;
const JUDGE_NOISE = 0.6;
const CLINICIAN_NOISE = 0.3;
const TOP_FRACTION = 0.5;
const MODEL_PAIRS = 3000;
const PAIRS_PER_LABEL = 5;
const CLINICIAN_WEIGHT = 10;
const EVAL_PAIRS = 4000;

interface World {
  features: Float32Array; // [(POOL + HELD_OUT)·D]; pool first
  utility: Float64Array;
  judge: Float64Array;
  acceptCut: number;
}

function gaussian(random: () => number): number {
  const u = Math.max(random(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

function makeWorld(seed: number): World {
  const random = seededRandom('routing-world', seed);
  const n = POOL + HELD_OUT;
  const w = Array.from({ length: D }, () => gaussian(random));
  const judgeOwn = Array.from({ length: D }, () => gaussian(random));
  const features = new Float32Array(n * D);
  const utility = new Float64Array(n);
  const judge = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let u = 0;
    let j = 0;
    for (let k = 0; k < D; k++) {
      const x = gaussian(random);
      features[i * D + k] = x;
      u += w[k] * x;
      j += (k < JUDGE_SEEN ? w[k] : judgeOwn[k]) * x;
    }
    utility[i] = u + 0.5 * features[i * D] * features[i * D + 1];
    j += JUDGE_NOISE * Math.sqrt(D) * gaussian(random);
    // A 0-10 rating, as the judge answers: the raw opinion squashed and rounded.
    judge[i] = Math.round(10 / (1 + Math.exp(-j / Math.sqrt(D))));
  }
  const sorted = [...utility].sort((a, b) => a - b);
  return { features, utility, judge, acceptCut: sorted[Math.floor((1 - TOP_FRACTION) * n)] };
}

function row(world: World, i: number): Float32Array {
  return world.features.subarray(i * D, (i + 1) * D);
}

function pairsFrom(world: World, list: { chosen: number; rejected: number; weight: number }[]): PreferencePairs {
  const chosen = new Float32Array(list.length * D);
  const rejected = new Float32Array(list.length * D);
  list.forEach((p, i) => {
    chosen.set(row(world, p.chosen), i * D);
    rejected.set(row(world, p.rejected), i * D);
  });
  return { dim: D, chosen, rejected, weights: Float32Array.from(list, (p) => p.weight) };
}

function modelPairs(world: World, seed: number) {
  const random = seededRandom('routing-model-pairs', seed);
  const out: { chosen: number; rejected: number; weight: number }[] = [];
  while (out.length < MODEL_PAIRS) {
    const a = Math.floor(random() * POOL);
    const b = Math.floor(random() * POOL);
    if (Math.abs(world.judge[a] - world.judge[b]) < 2) continue;
    out.push(world.judge[a] > world.judge[b] ? { chosen: a, rejected: b, weight: 1 } : { chosen: b, rejected: a, weight: 1 });
  }
  return out;
}

function clinicianPairs(world: World, labelled: readonly number[], seed: number) {
  const random = seededRandom('routing-clinician', seed);
  const accepted: number[] = [];
  const rejected: number[] = [];
  for (const i of labelled) (world.utility[i] + CLINICIAN_NOISE * gaussian(random) > world.acceptCut ? accepted : rejected).push(i);
  const out: { chosen: number; rejected: number; weight: number }[] = [];
  const pick = (from: number[]) => from[Math.floor(random() * from.length)];
  if (!accepted.length || !rejected.length) return out;
  for (const a of accepted) for (let k = 0; k < Math.min(PAIRS_PER_LABEL, rejected.length); k++) out.push({ chosen: a, rejected: pick(rejected), weight: CLINICIAN_WEIGHT });
  for (const r of rejected) for (let k = 0; k < Math.min(PAIRS_PER_LABEL, accepted.length); k++) out.push({ chosen: pick(accepted), rejected: r, weight: CLINICIAN_WEIGHT });
  return out;
}

/** Held-out pairs ordered by the true utility: what held-out clinician pairs measure. */
function evaluationPairs(world: World, seed: number): PreferencePair[] {
  const random = seededRandom('routing-eval', seed);
  const out: PreferencePair[] = [];
  while (out.length < EVAL_PAIRS) {
    const a = POOL + Math.floor(random() * HELD_OUT);
    const b = POOL + Math.floor(random() * HELD_OUT);
    if (a === b) continue;
    out.push(world.utility[a] > world.utility[b] ? { preferred: String(a), rejected: String(b) } : { preferred: String(b), rejected: String(a) });
  }
  return out;
}

const config = (seed: number): TrainingConfig => ({ hidden: [32], loss: { kind: 'logistic' }, epochs: 6, batchSize: 64, learningRate: 3e-3, seed });

async function scoreAll(parameters: HeadParameters, world: World): Promise<Float32Array> {
  const scorer = await HeadScorer.create(parameters);
  try {
    return await scorer.score(world.features);
  } finally {
    await scorer.release();
  }
}

interface Quality {
  /** Alignment rate on held-out pairs ordered by the true utility. */
  alignment: number;
  /** Share of the selector's top TOP_FRACTION of the held-out candidates that is in the true top TOP_FRACTION: what the dataset rule's cut gets right. */
  selection: number;
}

async function qualityOf(parameters: HeadParameters, world: World, evalPairs: PreferencePair[]): Promise<Quality> {
  const scores = await scoreAll(parameters, world);
  const map = new Map<string, number>();
  for (let i = POOL; i < POOL + HELD_OUT; i++) map.set(String(i), scores[i]);
  const held = Array.from({ length: HELD_OUT }, (_, k) => POOL + k);
  const keep = Math.ceil(TOP_FRACTION * HELD_OUT);
  const bySelector = new Set([...held].sort((a, b) => scores[b] - scores[a]).slice(0, keep));
  const trulyTop = [...held].sort((a, b) => world.utility[b] - world.utility[a]).slice(0, keep);
  return { alignment: alignmentRate(evalPairs, map).value!, selection: trulyTop.filter((i) => bySelector.has(i)).length / keep };
}

function shuffled(n: number, random: () => number): number[] {
  const out = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** The N (interpolated on the grid) at which `curve` (alignment per N, ascending N) first reaches `target`; null beyond the grid. */
function labelsToReach(ns: readonly number[], curve: readonly number[], target: number): number | null {
  if (curve[0] >= target) return ns[0];
  for (let i = 1; i < ns.length; i++) {
    if (curve[i] >= target) return ns[i - 1] + ((target - curve[i - 1]) / (curve[i] - curve[i - 1])) * (ns[i] - ns[i - 1]);
  }
  return null;
}

/** Round-robin over `buckets` equal-count strata of `by`, the highest `key` first in each (a variant tried). */
function stratified(ids: string[], by: ReadonlyMap<string, number>, key: (id: string) => number, buckets: number, jitter: ReadonlyMap<string, number>): number[] {
  const sorted = [...ids].sort((a, b) => by.get(a)! - by.get(b)! || jitter.get(a)! - jitter.get(b)!);
  const groups: string[][] = Array.from({ length: buckets }, () => []);
  sorted.forEach((id, i) => groups[Math.floor((i * buckets) / sorted.length)].push(id));
  for (const g of groups) g.sort((a, b) => key(b) - key(a) || jitter.get(a)! - jitter.get(b)!);
  const out: number[] = [];
  for (let k = 0; out.length < ids.length; k++) for (const g of groups) if (k < g.length) out.push(Number(g[k]));
  return out;
}

const mean = (v: readonly number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const sd = (v: readonly number[]) => Math.sqrt(v.reduce((a, b) => a + (b - mean(v)) ** 2, 0) / Math.max(1, v.length - 1));

async function main(): Promise<void> {
  const started = Date.now();
  const load = os.loadavg();
  console.log(`routing benchmark: pool ${POOL}, held-out ${HELD_OUT}, D ${D}, judge sees ${JUDGE_SEEN}/${D} features, ${MODEL_PAIRS} model pairs, ${DEMOS} demonstration labels, clinician weight ${CLINICIAN_WEIGHT}, ${SEEDS} seeds, N = ${NS.join(', ')}; ${os.cpus().length} CPUs, load ${load.map((l) => l.toFixed(2)).join(' ')}`);
  const initial: Quality[] = [];
  const ROUTINGS = ['RANDOM', 'VALUE', 'value alone', 'disagreement only', 'threshold only', 'value strata'] as const;
  type Routing = (typeof ROUTINGS)[number];
  const byRouting = Object.fromEntries(ROUTINGS.map((r) => [r, NS.map(() => [] as Quality[])])) as Record<Routing, Quality[][]>;
  for (let seed = 1; seed <= SEEDS; seed++) {
    const world = makeWorld(seed);
    const model = modelPairs(world, seed);
    const evalPairs = evaluationPairs(world, seed);
    // With BENCH_DEMOS, the initial selector also learned from DEMOS clinician-labelled pool candidates,
    // as a project's selector learns from stage 1's demonstrations; they stay in every retraining and are not routed again.
    const demos = shuffled(POOL, seededRandom('routing-demos', seed)).slice(0, DEMOS);
    const isDemo = new Set(demos);
    const base = [...model, ...clinicianPairs(world, demos, seed + 1000)];
    const start = await trainHead(pairsFrom(world, base), config(seed));
    initial.push(await qualityOf(start.parameters, world, evalPairs));

    // What a project knows before clinicians start: the initial selector's scores, the judge's ratings, the rule's cut.
    const scores = await scoreAll(start.parameters, world);
    const ids = Array.from({ length: POOL }, (_, i) => String(i));
    const selectorScores = new Map(ids.map((id, i) => [id, scores[i]]));
    const judgeRatings = new Map(ids.map((id, i) => [id, world.judge[i]]));
    const cut = [...selectorScores.values()].sort((a, b) => b - a)[Math.ceil(TOP_FRACTION * POOL) - 1];
    const values = annotationValueOf(ids, { selectorScores, judgeRatings, threshold: { scores: selectorScores, value: cut } });
    const tieBreak = seededRandom('routing-ties', seed);
    const jitter = new Map(ids.map((id) => [id, tieBreak()]));
    const orderBy = (value: (v: { priority: number; value: number; disagreement: number; thresholdProximity: number }) => number) =>
      [...ids].sort((a, b) => value(values.get(b)!) - value(values.get(a)!) || jitter.get(a)! - jitter.get(b)!).map(Number);
    const orders: Record<Routing, number[]> = {
      RANDOM: shuffled(POOL, seededRandom('routing-random', seed)),
      VALUE: orderBy((v) => v.priority),
      'value alone': orderBy((v) => v.value),
      'disagreement only': orderBy((v) => v.disagreement),
      'threshold only': orderBy((v) => v.thresholdProximity),
      'value strata': stratified(ids, selectorScores, (id) => values.get(id)!.value, 10, jitter),
    };

    for (const routing of ROUTINGS) {
      for (let k = 0; k < NS.length; k++) {
        const labelled = orders[routing].filter((i) => !isDemo.has(i)).slice(0, NS[k]);
        const trained = await trainHead(pairsFrom(world, [...base, ...clinicianPairs(world, labelled, seed)]), config(seed));
        byRouting[routing][k].push(await qualityOf(trained.parameters, world, evalPairs));
      }
    }
    console.log(`  seed ${seed}: initial ${initial[seed - 1].alignment.toFixed(3)}; ${ROUTINGS.map((r) => `${r} ${byRouting[r].map((q) => q[seed - 1].alignment.toFixed(3)).join(' ')}`).join('; ')}`);
  }

  for (const metric of ['alignment', 'selection'] as const) {
    const of = (qs: Quality[]) => qs.map((q) => q[metric]);
    const randomCurve = byRouting.RANDOM.map((qs) => mean(of(qs)));
    console.log(
      metric === 'alignment'
        ? `\nselector alignment with clinicians on held-out pairs (mean ± sd over ${SEEDS} seeds; initial selector (model pairs${DEMOS ? ` + ${DEMOS} demonstration labels` : ' only'}): ${mean(of(initial)).toFixed(3)} ± ${sd(of(initial)).toFixed(3)})`
        : `\nselection precision at the rule's cut: share of the selector's top ${TOP_FRACTION * 100} % of held-out candidates truly in the top ${TOP_FRACTION * 100} % (initial: ${mean(of(initial)).toFixed(3)})`,
    );
    console.log(`| N labels | RANDOM | ${ROUTINGS.slice(1).join(' | ')} | VALUE − RANDOM (paired) | RANDOM needs for VALUE’s figure | labels saved |`);
    console.log(`|---:|---:|${ROUTINGS.slice(1).map(() => '---:|').join('')}---:|---:|---:|`);
    NS.forEach((n, k) => {
      const cell = (r: Routing) => `${mean(of(byRouting[r][k])).toFixed(3)} ± ${sd(of(byRouting[r][k])).toFixed(3)}`;
      const v = mean(of(byRouting.VALUE[k]));
      const needs = labelsToReach(NS, randomCurve, v);
      const diffs = of(byRouting.VALUE[k]).map((x, s) => x - of(byRouting.RANDOM[k])[s]);
      const diff = mean(diffs);
      const beyond = `> ${NS[NS.length - 1]}`;
      console.log(
        `| ${n} | ${cell('RANDOM')} | ${ROUTINGS.slice(1).map(cell).join(' | ')} | ${diff >= 0 ? '+' : ''}${diff.toFixed(3)} ± ${sd(diffs).toFixed(3)} | ${needs === null ? beyond : needs.toFixed(0)} | ${needs === null ? `> ${NS[NS.length - 1] - n}` : (needs - n).toFixed(0)} |`,
      );
    });
  }
  console.log(`\n${((Date.now() - started) / 1000).toFixed(0)} s, load after ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
