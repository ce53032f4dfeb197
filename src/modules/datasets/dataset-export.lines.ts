/**
 * The LLaVA JSON and JSONL exports' records, written by Postgres as JSON text: one row per item
 * holds its line, ready to send (issue 14). Building them in JavaScript cost more than reading the
 * rows: every row's `rounds` went through JSON.parse, an object per record and per turn, and
 * JSON.stringify back; the export ran at 0.3-0.5 of the raw row stream. Here the server reads one
 * or three text columns a row and joins them.
 *
 * The bytes are those of `JSON.stringify(toLlavaSample(row))` / `JSON.stringify(toJsonlRecord(row))`
 * in dataset-export.format.ts, which stays the definition of the formats (and the TRL exports'
 * builder); test/datasets/dataset-export-lines.test.ts compares both paths byte for byte. What makes
 * them equal:
 * - Strings go through `to_json(text)`, whose escaping is JSON.stringify's: `"` `\` and \b \f \n
 *   \r \t by name, other code points below U+0020 as \u00xx (lower-case hex), everything else as
 *   is (Postgres text never holds the lone surrogates JSON.stringify would escape).
 * - Objects are concatenated by hand, compact (`json_build_object` and `json_agg` put spaces after
 *   `:` and `,`); arrays of strings by `to_json(text[])`, which is compact.
 * - Floats are not formatted by Postgres (`1e-05` where JavaScript writes `0.00001`): the JSONL
 *   line comes in two halves with the score between them as a number, spliced in by
 *   `JSON.stringify(score)`.
 * - Global ids are base64url of `<Type>:<uuid>`, as platform/ids.ts makes them: `encode(…, 'base64')`
 *   with `+/` mapped to `-_` and the padding cut. Postgres breaks base64 lines every 76 characters;
 *   `Candidate:<uuid>`, the longest here, is 46 bytes, 64 characters.
 * - Image paths as `imagePath`: the same extension table, `bin` for any other type.
 */
import { toGlobalId } from '../../platform/ids';
import { IMAGE_DIR, IMAGE_EXTENSIONS, IMAGE_TOKEN } from './dataset-export.format';

export interface SqlQuery {
  text: string;
  values: unknown[];
}

const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;
/** A JSON string (nullable) from a text expression. */
const jsonString = (expr: string) => `coalesce(to_json(${expr})::text, 'null')`;
/** A JSON number (nullable) from an integer expression. */
const jsonInteger = (expr: string) => `coalesce((${expr})::text, 'null')`;
/** A JSON array of strings from a text[] expression (never null here). */
const jsonStrings = (expr: string) => `to_json(${expr})::text`;
/** `"key":` as a SQL literal. */
const key = (name: string, first = false) => literal(`${first ? '' : ','}${JSON.stringify(name)}:`);

/** The API's global id of a uuid column, `toGlobalId(type, id)` in SQL; nullable. */
function globalId(type: string, uuidExpr: string): string {
  // The one place that knows the encoding must agree: checked once at load, cheap, and loud.
  const sample = '00000000-0000-0000-0000-000000000000';
  if (toGlobalId(type, sample) !== Buffer.from(`${type}:${sample}`).toString('base64url')) throw new Error('global id encoding changed: update dataset-export.lines.ts');
  if (`${type}:`.length + 36 > 57) throw new Error(`${type}: Postgres would break its base64 line`);
  return `coalesce('"' || translate(rtrim(encode(convert_to(${literal(type + ':')} || ${uuidExpr}, 'UTF8'), 'base64'), '='), '+/', '-_') || '"', 'null')`;
}

/** `imagePath(content_hash, mime_type)` as a JSON string or null. */
const imagePathJson = (hash: string, mime: string) =>
  `CASE WHEN ${hash} IS NULL THEN 'null' ELSE to_json(${literal(IMAGE_DIR + '/')} || ${hash} || '.' || CASE ${mime} ${Object.entries(IMAGE_EXTENSIONS)
    .map(([type, ext]) => `WHEN ${literal(type)} THEN ${literal(ext)}`)
    .join(' ')} ELSE 'bin' END)::text END`;

/**
 * Per candidate, its LLaVA turns (first answer of each round, `<image>\n` before the first question)
 * as the inside of a JSON array, and its alternative answers (each round's second, else null) the same.
 */
export const CONVERSATION_JOIN = `
  CROSS JOIN LATERAL (
    SELECT coalesce(string_agg('{"from":"human","value":' || to_json(CASE WHEN r.n = 1 THEN ${literal(IMAGE_TOKEN)} ELSE '' END || (r.round->>'question'))::text
                               || '},{"from":"gpt","value":' || to_json(coalesce(r.round->'answers'->>0, ''))::text || '}', ',' ORDER BY r.n), '') AS turns,
           coalesce(string_agg(coalesce(to_json(r.round->'answers'->>1)::text, 'null'), ',' ORDER BY r.n), '') AS alternatives
      FROM jsonb_array_elements(c.rounds) WITH ORDINALITY AS r(round, n)
  ) conv`;

/** `{"id":…,"image":…,"conversations":[…]` — the LLaVA sample without its closing brace. */
const LLAVA_OPEN = [
  `${key('id', true)} || ${globalId('Candidate', 'c.id::text')}`,
  `${key('image')} || ${imagePathJson('i.content_hash', 'i.mime_type')}`,
  `${key('conversations')} || '[' || conv.turns || ']'`,
].join(' || ');

/**
 * The select lists, over the aliases of the service's item statement (`di` dataset_items, `c`
 * candidates, `i` images) joined with CONVERSATION_JOIN (`conv`); the service owns the statement.
 */
export const LLAVA_LINE_SELECT = `'{' || ${LLAVA_OPEN} || '}' AS line`;

/**
 * The JSONL record up to `"score":` (`head`), the score, and the rest from the comma after it with
 * the newline (`tail`): `head + JSON.stringify(score) + tail`.
 */
export const JSONL_LINE_SELECT = (() => {
  const head = [`'{' || ${LLAVA_OPEN}`, `${key('candidate_uuid')} || to_json(c.id::text)::text`, `${key('rank')} || ${jsonInteger('di.rank')}`, key('score')].join(' || ');
  const tail = [
    `${key('image_id')} || ${globalId('Image', 'i.id::text')}`,
    `${key('image_uuid')} || to_json(i.id::text)::text`,
    `${key('pair_id')} || ${jsonString('i.pair_id')}`,
    `${key('pmid')} || ${jsonString('i.pmid')}`,
    `${key('fig_label')} || ${jsonString('i.fig_label')}`,
    `${key('modalities')} || ${jsonStrings('i.modalities::text[]')}`,
    `${key('caption')} || ${jsonString('i.caption')}`,
    `${key('mentions')} || ${jsonStrings('i.mentions')}`,
    `${key('cluster_id')} || ${jsonInteger('i.cluster_id')}`,
    `${key('alternative_answers')} || '[' || conv.alternatives || ']'`,
    `${key('form')} || ${jsonString('c.form::text')}`,
    `${key('status')} || ${jsonString('c.status::text')}`,
    `${key('generation_run_id')} || ${globalId('Run', 'c.run_id::text')}`,
    `${key('model')} || ${jsonString('c.model')}`,
    `${key('prompt_template_version')} || ${jsonString('c.prompt_template_version')}`,
    `${key('sample_index')} || ${jsonInteger('c.sample_index')}`,
  ].join(' || ');
  return `${head} AS head, di.score, ${tail} || E'}\\n' AS tail`;
})();
