import type { DataSource } from 'typeorm';
import { toGlobalId } from '../../platform/ids';
import type { Dataset } from './dataset.entity';

/**
 * The dataset card: what a version of a dataset holds and how it came to be, for whoever trains on
 * it. One data object (`DatasetCard`), rendered as JSON (`card.json`) and markdown (`card.md`); both
 * travel in the image archive too. Built from the frozen rule and items and from the provenance
 * stored on their candidates and preferences: nothing here is recomputed from outside data.
 */

export const CARD_SCHEMA = 'biomed-vital/dataset-card/v1';
/** Said where a measure has no value yet, rather than leaving it out. */
export const NOT_EVALUATED = 'not evaluated';
export const NOT_MEASURED = 'not yet measured';

export interface GenerationGroup {
  /** Global id of the generation run; null for candidates imported without one. */
  runId: string | null;
  runUuid: string | null;
  model: string | null;
  promptTemplateVersion: string | null;
  candidates: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
}

export interface DemonstrationUse {
  id: string;
  uuid: string;
  /** Items whose candidate was generated with this demonstration in its prompt. */
  candidates: number;
}

export interface RatingGroup {
  /** Global id of the rating run; null for model preferences recorded outside a run. */
  runId: string | null;
  runUuid: string | null;
  judgeModel: string | null;
  rubricVersion: string | null;
  /** Model preferences of this group on the dataset's candidates. */
  preferences: number;
  candidatesRated: number;
  /** The whole run's cost, candidates outside this dataset included (costs are kept per run). */
  runCostUsd: number | null;
}

export interface DatasetCard {
  schema: typeof CARD_SCHEMA;
  dataset: {
    id: string;
    uuid: string;
    name: string;
    version: number;
    description: string | null;
    createdAt: string;
    itemCount: number;
    /** SHA-256 over the ordered candidate ids and scores. */
    contentHash: string | null;
  };
  composition: {
    /** Items per modality; an image with two modalities counts in both, none under NONE. */
    byModality: Record<string, number>;
    /** Items per image source (UPLOAD, URL, IMPORT). */
    bySource: Record<string, number>;
    distinctImages: number;
  };
  selection: {
    rule: Record<string, unknown>;
    selector: { id: string | null; name: string | null; version: number | null; filesHash: string | null } | null;
    /** Alignment of the selector with clinicians' preferences; null until it is evaluated. */
    alignmentMetrics: Record<string, number> | null;
    alignmentStatus: string;
  };
  generation: {
    groups: GenerationGroup[];
    demonstrations: DemonstrationUse[];
    totals: { candidates: number; promptTokens: number; completionTokens: number; costUsd: number };
  };
  rating: {
    models: RatingGroup[];
    clinicians: { preferences: number; annotators: number; candidatesJudged: number };
  };
  clinicianAgreement: { value: Record<string, number> | null; status: string };
}

const num = (v: unknown): number => Number(v ?? 0);

/** Items' generation provenance, grouped by run, model and prompt template version; sums in SQL. */
const GENERATION_SQL = `
  SELECT c.run_id AS "runUuid", c.model, c.prompt_template_version AS "promptTemplateVersion", count(*)::int AS candidates,
         sum(c.prompt_tokens)::bigint::text AS "promptTokens", sum(c.completion_tokens)::bigint::text AS "completionTokens",
         sum(c.cost_usd)::text AS "costUsd"
    FROM dataset_items di JOIN candidates c ON c.id = di.candidate_id AND c.project_id = di.project_id
   WHERE di.dataset_id = $1 AND di.project_id = $2
   GROUP BY 1, 2, 3 ORDER BY count(*) DESC, 2 NULLS LAST, 3 NULLS LAST, 1 NULLS LAST`;

const DEMONSTRATIONS_SQL = `
  SELECT d AS uuid, count(*)::int AS candidates
    FROM dataset_items di JOIN candidates c ON c.id = di.candidate_id AND c.project_id = di.project_id, unnest(c.demonstration_ids) d
   WHERE di.dataset_id = $1 AND di.project_id = $2
   GROUP BY d ORDER BY count(*) DESC, d`;

const COMPOSITION_SQL = `
  SELECT coalesce(jsonb_object_agg(source, n) FILTER (WHERE source IS NOT NULL), '{}') AS "bySource",
         coalesce(sum(images), 0)::int AS "distinctImages"
    FROM (SELECT i.source::text AS source, count(*)::int AS n, count(DISTINCT i.id)::int AS images
            FROM dataset_items di JOIN candidates c ON c.id = di.candidate_id AND c.project_id = di.project_id
            JOIN images i ON i.id = c.image_id AND i.project_id = di.project_id
           WHERE di.dataset_id = $1 AND di.project_id = $2 GROUP BY 1) per_source`;

const MODEL_RATINGS_SQL = `
  SELECT p.run_id AS "runUuid", p.judge_model AS "judgeModel", p.rubric_version AS "rubricVersion", count(*)::int AS preferences,
         count(DISTINCT p.candidate_id)::int AS "candidatesRated", r.cost_usd::text AS "runCostUsd"
    FROM preferences p JOIN dataset_items di ON di.candidate_id = p.candidate_id AND di.dataset_id = $1
    LEFT JOIN runs r ON r.id = p.run_id AND r.project_id = p.project_id
   WHERE p.project_id = $2 AND p.source = 'MODEL'
   GROUP BY p.run_id, p.judge_model, p.rubric_version, r.cost_usd
   ORDER BY count(*) DESC, 2 NULLS LAST, 3 NULLS LAST, 1 NULLS LAST`;

const CLINICIANS_SQL = `
  SELECT count(*)::int AS preferences, count(DISTINCT p.annotator_id)::int AS annotators, count(DISTINCT p.candidate_id)::int AS "candidatesJudged"
    FROM preferences p JOIN dataset_items di ON di.candidate_id = p.candidate_id AND di.dataset_id = $1
   WHERE p.project_id = $2 AND p.source = 'CLINICIAN'`;

type Row = Record<string, unknown>;

/** The card's data, in five short aggregate statements (no per-item work in the application). */
export async function buildDatasetCard(ds: DataSource, dataset: Dataset): Promise<DatasetCard> {
  const params = [dataset.id, dataset.projectId];
  // One after the other: a card takes one pooled connection at a time, like the export it travels with.
  const results: Row[][] = [];
  for (const sql of [GENERATION_SQL, DEMONSTRATIONS_SQL, COMPOSITION_SQL, MODEL_RATINGS_SQL, CLINICIANS_SQL]) results.push(await ds.query(sql, params));
  const [generation, demonstrations, [composition], ratings, [clinicians]] = results;
  const groups: GenerationGroup[] = generation.map((g) => ({
    runId: g.runUuid ? toGlobalId('Run', String(g.runUuid)) : null,
    runUuid: (g.runUuid as string | null) ?? null,
    model: (g.model as string | null) ?? null,
    promptTemplateVersion: (g.promptTemplateVersion as string | null) ?? null,
    candidates: num(g.candidates),
    promptTokens: num(g.promptTokens),
    completionTokens: num(g.completionTokens),
    costUsd: num(g.costUsd),
  }));
  const sum = (key: 'candidates' | 'promptTokens' | 'completionTokens' | 'costUsd') => groups.reduce((total, g) => total + g[key], 0);
  const selector = (dataset.rule?.selector as DatasetCard['selection']['selector']) ?? null;
  return {
    schema: CARD_SCHEMA,
    dataset: {
      id: toGlobalId('Dataset', dataset.id),
      uuid: dataset.id,
      name: dataset.name,
      version: dataset.version,
      description: dataset.description,
      createdAt: dataset.createdAt.toISOString(),
      itemCount: dataset.itemCount,
      contentHash: dataset.contentHash,
    },
    composition: {
      byModality: dataset.countsByModality,
      bySource: composition.bySource as Record<string, number>,
      distinctImages: num(composition.distinctImages),
    },
    selection: {
      rule: dataset.rule,
      selector: selector && { id: selector.id ?? null, name: selector.name ?? null, version: selector.version ?? null, filesHash: selector.filesHash ?? null },
      alignmentMetrics: null,
      alignmentStatus: NOT_EVALUATED,
    },
    generation: {
      groups,
      demonstrations: demonstrations.map((d) => ({ id: toGlobalId('Demonstration', String(d.uuid)), uuid: String(d.uuid), candidates: num(d.candidates) })),
      // Rounded to the cent's ten-thousandth: a float sum of numeric(12,6) values is off in the last bits.
      totals: { candidates: sum('candidates'), promptTokens: sum('promptTokens'), completionTokens: sum('completionTokens'), costUsd: Math.round(sum('costUsd') * 1e6) / 1e6 },
    },
    rating: {
      models: ratings.map((r) => ({
        runId: r.runUuid ? toGlobalId('Run', String(r.runUuid)) : null,
        runUuid: (r.runUuid as string | null) ?? null,
        judgeModel: (r.judgeModel as string | null) ?? null,
        rubricVersion: (r.rubricVersion as string | null) ?? null,
        preferences: num(r.preferences),
        candidatesRated: num(r.candidatesRated),
        runCostUsd: r.runCostUsd == null ? null : num(r.runCostUsd),
      })),
      clinicians: { preferences: num(clinicians.preferences), annotators: num(clinicians.annotators), candidatesJudged: num(clinicians.candidatesJudged) },
    },
    clinicianAgreement: { value: null, status: NOT_MEASURED },
  };
}

// ---------------------------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------------------------

/** A table cell: pipes and line breaks would break the table. */
const cell = (value: unknown): string => (value == null || value === '' ? '—' : String(value).replace(/\|/g, '\\|').replace(/\r?\n/g, ' '));
const table = (head: string[], rows: unknown[][]): string =>
  [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
const usd = (value: number | null) => (value == null ? null : `$${value.toFixed(4)}`);
const counts = (record: Record<string, number>) =>
  Object.entries(record)
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .map(([key, n]) => [key, n]);

export function renderCardMarkdown(card: DatasetCard): string {
  const { dataset: d, composition, selection, generation, rating } = card;
  const selector = selection.selector;
  const lines = [
    `# Dataset card: ${d.name} v${d.version}`,
    '',
    d.description ?? '',
    '',
    table(['field', 'value'], [
      ['id', d.id],
      ['uuid', d.uuid],
      ['created', d.createdAt],
      ['items', d.itemCount],
      ['content hash (SHA-256)', d.contentHash],
    ]),
    '',
    '## Composition',
    '',
    `${composition.distinctImages} distinct images. By modality (an image with two modalities counts in both):`,
    '',
    table(['modality', 'items'], counts(composition.byModality)),
    '',
    'By image source:',
    '',
    table(['source', 'items'], counts(composition.bySource)),
    '',
    '## Selection',
    '',
    selector ? `Selector ${cell(selector.name)} version ${cell(selector.version)} (${cell(selector.id)}), files hash ${cell(selector.filesHash)}.` : 'No selector.',
    '',
    `Alignment metrics: ${selection.alignmentMetrics ? JSON.stringify(selection.alignmentMetrics) : selection.alignmentStatus}.`,
    '',
    'Rule:',
    '',
    '```json',
    JSON.stringify(selection.rule, null, 2),
    '```',
    '',
    '## Generation',
    '',
    table(
      ['run', 'model', 'prompt template', 'candidates', 'prompt tokens', 'completion tokens', 'cost (USD)'],
      generation.groups.map((g) => [g.runId, g.model, g.promptTemplateVersion, g.candidates, g.promptTokens, g.completionTokens, usd(g.costUsd)]),
    ),
    '',
    `Total: ${generation.totals.candidates} candidates, ${generation.totals.promptTokens} prompt and ${generation.totals.completionTokens} completion tokens, ${usd(generation.totals.costUsd)}.`,
    '',
    generation.demonstrations.length ? 'Demonstrations used:' : 'No demonstrations recorded.',
    '',
    ...(generation.demonstrations.length ? [table(['demonstration', 'candidates'], generation.demonstrations.map((x) => [x.id, x.candidates])), ''] : []),
    '## Rating',
    '',
    rating.models.length ? 'Model ratings (cost is the whole run\'s, candidates outside this dataset included):' : 'No model ratings.',
    '',
    ...(rating.models.length
      ? [table(['run', 'judge model', 'rubric', 'preferences', 'candidates rated', 'run cost (USD)'], rating.models.map((r) => [r.runId, r.judgeModel, r.rubricVersion, r.preferences, r.candidatesRated, usd(r.runCostUsd)])), '']
      : []),
    `Clinicians: ${rating.clinicians.preferences} preferences by ${rating.clinicians.annotators} annotators on ${rating.clinicians.candidatesJudged} candidates.`,
    '',
    `Clinician agreement: ${card.clinicianAgreement.value ? JSON.stringify(card.clinicianAgreement.value) : card.clinicianAgreement.status}.`,
    '',
  ];
  return lines.join('\n');
}

export const renderCardJson = (card: DatasetCard): string => JSON.stringify(card, null, 2) + '\n';
