export type ParsedRating = { kind: 'ok'; score: number; rationale: string } | { kind: 'failed'; reason: string };

const MIN_SCORE = 0;
const MAX_SCORE = 10;

const SCORE_KEYS = ['score', 'rating', 'overall_score', 'final_score'];
const RATIONALE_KEYS = ['rationale', 'reason', 'reasoning', 'explanation', 'justification'];

const NUMBER = String.raw`[-+]?(?:\d+(?:\.\d+)?|\.\d+)`;
/** `6-7`, `6 to 7`: a range is recognised so that it is refused rather than read as its first number. */
const RANGE_END = String.raw`(?:\s*(?:-|–|—|to)\s*(?<upper>\d+(?:\.\d+)?))?`;
const SCALE = String.raw`(?:\s*\(?\s*(?:\/|out\s+of)\s*(?<scale>\d+(?:\.\d+)?)\s*\)?)`;

/**
 * `Score: 8`, `Score: 8/10`, `**Score:** 9`, `Overall score (0-10): 6 out of 10`, `Rating - 7`. The
 * value is optional so that `Score: N/A` is recognised as a score statement without a number rather
 * than ignored; the scale is captured so that `4/5` is rejected instead of read as 4 out of 10. A
 * dash separates only with spaces on both sides, so `Rating -2` is not read as 2.
 */
const SCORE_STATEMENT = new RegExp(
  String.raw`(?:\*\*|__)?\b(?:(?:overall|final|total)\s+)?(?:score|rating)(?:\s*\([^)\n]*\))?\s*(?:\*\*|__)?(?:\s*[:=]|[^\S\n]+[-–—][^\S\n])\s*(?:\*\*|__)?[^\S\n]*` +
    String.raw`(?<value>${NUMBER})?${RANGE_END}${SCALE}?(?:\*\*|__)?`,
  'gi',
);

/**
 * A line that is only a score: `6`, `**7**`, `7/10`, `8 out of 10.`; with an explicit `/10` scale it
 * may go on after a separator (`7/10 - misses the effusion`). Judges put it first or last, so only
 * those lines are read: a number inside the rationale ("3 lesions", a numbered list) is no score.
 */
const BARE_SCORE_LINE = new RegExp(String.raw`^[^\S\n]*(?:\*\*|__)?(?<value>${NUMBER})${RANGE_END}${SCALE}?(?:\*\*|__)?[^\S\n]*(?<rest>.*)$`, 'i');
/** `## Score`, `**Rating**`, `Final score:` alone on a line, with the score on the next one. */
const SCORE_HEADING = /^[^\S\n]*(?:#{1,6}[^\S\n]*)?(?:\*\*|__)?[^\S\n]*(?:(?:overall|final|total)\s+)?(?:score|rating)[^\S\n]*(?:\*\*|__)?[^\S\n]*:?[^\S\n]*(?:\*\*|__)?[^\S\n]*$/i;
const BARE_LINE_TAIL = /^(?:\.?\s*|[-–—:.,;]\s+(?<rationale>.*))$/;

/**
 * `I would rate this 6 out of 10 because…`, `I'd give it a 7/10`. Only with an explicit scale, so
 * that "gives 3 examples" is not a score.
 */
const RATE_PHRASE = new RegExp(
  String.raw`\b(?:rate|rated|rating|give|gave|giving|grade|graded|award|score|scored|deserves?)\b[^\n.\d]{0,40}?(?<value>${NUMBER})${RANGE_END}${SCALE}`,
  'gi',
);

interface ScoreStatement {
  /** Where it starts in the reply, so that conflicts are reported in reading order. */
  at: number;
  value?: string;
  upper?: string;
  scale?: string;
}

const RATIONALE_LABEL = /(?:^|\n)[^\S\n]*(?:#{1,6}[^\S\n]*)?(?:[-*•]\s+)?(?:\*\*|__)?(?:rationale|reason(?:ing)?|explanation|justification)(?:\*\*|__)?(?:\s*:|[^\S\n]*\n)\s*(?:\*\*|__)?/i;

/** Lines left with nothing but markup once the score statement is cut out of them. */
const MARKUP_ONLY_LINE = /^[^\S\n]*(?:```\w*|~~~|[-*•#>_.:|]+)[^\S\n]*$/gm;

export function parseRatingReply(text: string): ParsedRating {
  return parseJsonRating(text) ?? parseTextRating(text);
}

/** Null when the reply holds no JSON object with a score field, so the text forms get their turn. */
function parseJsonRating(text: string): ParsedRating | null {
  const rated = extractJsonObjects(text).filter((object) => findField(object, SCORE_KEYS) !== undefined);
  if (rated.length === 0) return null;

  const ratings = rated.map(ratingFromObject);
  const failure = ratings.find((rating) => rating.kind === 'failed');
  if (failure) return failure;
  return firstUnlessConflicting(ratings as Array<Extract<ParsedRating, { kind: 'ok' }>>);
}

function ratingFromObject(object: Record<string, unknown>): ParsedRating {
  const score = scoreFromJsonValue(findField(object, SCORE_KEYS));
  if (typeof score === 'string') return { kind: 'failed', reason: score };
  const rationale = findField(object, RATIONALE_KEYS);
  return { kind: 'ok', score, rationale: typeof rationale === 'string' ? rationale.trim() : '' };
}

/** Returns the score, or the reason it is unusable. */
function scoreFromJsonValue(value: unknown): number | string {
  const numeric = typeof value === 'string' && /^\s*[-+]?(?:\d+(?:\.\d+)?|\.\d+)\s*$/.test(value) ? Number(value) : value;
  if (typeof numeric !== 'number') return `score field is not a number: ${JSON.stringify(value)}`;
  return checkRange(numeric);
}

function parseTextRating(text: string): ParsedRating {
  const labelled = [...text.matchAll(SCORE_STATEMENT)].map((m) => ({ ...m.groups, at: m.index }) as ScoreStatement);
  const statements: ScoreStatement[] = [
    ...labelled,
    ...bareScoreLines(text).map((line) => line.statement),
    ...[...text.matchAll(RATE_PHRASE)].map((m) => ({ ...m.groups, at: m.index }) as ScoreStatement),
  ].sort((a, b) => a.at - b.at);
  const withValue = statements.filter((statement) => statement.value !== undefined);
  if (withValue.length === 0) {
    const reason = labelled.length > 0 ? 'score label found but without a numeric value' : 'no score found';
    return { kind: 'failed', reason };
  }

  const scores: number[] = [];
  for (const statement of withValue) {
    const score = scoreFromStatement(statement);
    if (typeof score === 'string') return { kind: 'failed', reason: score };
    scores.push(score);
  }

  const rationale = extractRationale(text);
  return firstUnlessConflicting(scores.map((score) => ({ kind: 'ok' as const, score, rationale })));
}

/**
 * Bare score lines: the first and last non-empty lines, and the line under a `## Score` or
 * `**Rating**` heading, when they hold only a score; with what the line says after the score and
 * the heading to drop from the rationale.
 */
function bareScoreLines(text: string): Array<{ index: number; heading: number | null; statement: ScoreStatement; rationale: string }> {
  const lines = text.split('\n');
  const filled = lines.flatMap((line, index) => (line.trim() && !/^\s*(?:```|~~~)/.test(line) ? [index] : []));
  const underHeading = new Map<number, number>();
  filled.forEach((index, k) => {
    if (SCORE_HEADING.test(lines[index]) && filled[k + 1] !== undefined) underHeading.set(filled[k + 1], index);
  });
  const candidates = [...new Set([filled[0], filled[filled.length - 1], ...underHeading.keys()])].filter((index) => index !== undefined);
  return candidates.flatMap((index) => {
    const match = BARE_SCORE_LINE.exec(lines[index]);
    if (!match?.groups) return [];
    const { value, upper, scale, rest } = match.groups;
    const tail = BARE_LINE_TAIL.exec(rest);
    // Text after the number only when the scale says it is a score: "3 lesions" is not.
    if (!tail || (tail.groups?.rationale !== undefined && scale === undefined)) return [];
    const at = lines.slice(0, index).reduce((offset, line) => offset + line.length + 1, 0);
    return [{ index, heading: underHeading.get(index) ?? null, statement: { at, value, upper, scale }, rationale: tail.groups?.rationale ?? '' }];
  });
}

function scoreFromStatement({ value, upper, scale }: ScoreStatement): number | string {
  if (upper !== undefined) return `score range ${value}-${upper} is not a single score`;
  if (scale !== undefined && Number(scale) !== MAX_SCORE) return `score ${value}/${scale} is not on the 0-${MAX_SCORE} scale`;
  return checkRange(Number(value));
}

function checkRange(score: number): number | string {
  if (!Number.isFinite(score)) return `score ${score} is not a finite number`;
  if (score < MIN_SCORE || score > MAX_SCORE) return `score ${score} is outside the ${MIN_SCORE}-${MAX_SCORE} range`;
  return score;
}

function firstUnlessConflicting(ratings: Array<Extract<ParsedRating, { kind: 'ok' }>>): ParsedRating {
  const distinct = [...new Set(ratings.map((rating) => rating.score))];
  if (distinct.length > 1) return { kind: 'failed', reason: `conflicting scores: ${distinct.join(', ')}` };
  return ratings[0];
}

/** The labelled rationale section when there is one, otherwise the whole reply; score statements removed either way. */
function extractRationale(text: string): string {
  const lines = text.split('\n');
  for (const bare of bareScoreLines(text)) {
    lines[bare.index] = bare.rationale;
    if (bare.heading !== null) lines[bare.heading] = '';
  }
  const unscored = lines.join('\n');
  const label = RATIONALE_LABEL.exec(unscored);
  const section = label ? unscored.slice(label.index + label[0].length) : unscored;
  return section
    .replace(SCORE_STATEMENT, '')
    .replace(MARKUP_ONLY_LINE, '')
    .replace(/\n[^\S\n]*(?:\n[^\S\n]*){2,}/g, '\n\n')
    .trim();
}

function findField(object: Record<string, unknown>, names: string[]): unknown {
  for (const name of names) {
    const key = Object.keys(object).find((candidate) => candidate.toLowerCase() === name);
    if (key !== undefined) return object[key];
  }
  return undefined;
}

/** Every top-level `{...}` in the text that parses as a JSON object, wherever it sits (fences, prose around it). */
function extractJsonObjects(text: string): Array<Record<string, unknown>> {
  const objects: Array<Record<string, unknown>> = [];
  let start = text.indexOf('{');
  while (start !== -1) {
    const end = findClosingBrace(text, start);
    const parsed = end === -1 ? null : parseObject(text.slice(start, end + 1));
    if (parsed) objects.push(parsed);
    start = text.indexOf('{', parsed ? end + 1 : start + 1);
  }
  return objects;
}

function findClosingBrace(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  let escaped = false;
  for (let i = start; i < text.length; i++) {
    const char = text[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (char === '\\') escaped = true;
      else if (char === '"') inString = false;
    } else if (char === '"') {
      inString = true;
    } else if (char === '{') {
      depth++;
    } else if (char === '}' && --depth === 0) {
      return i;
    }
  }
  return -1;
}

function parseObject(candidate: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(candidate);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
