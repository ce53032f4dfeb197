/**
 * Dataset exports, the pure half: one dataset row in, one record out. No I/O here; the streaming
 * lives in dataset-exports.service.ts, the HTTP route in dataset-exports.routes.ts:
 * `GET /exports/datasets/<dataset id>/<format>` with a signed link or an API key of the project
 * (any role). Ids: `id` and `*_id` fields are the API's global ids, `*_uuid` the raw row ids.
 *
 * Formats (items always in rank order, rank 1 first; `image` is a path inside the image archive,
 * so a training script unpacks the archive next to the JSON; null for an image known only by its
 * record):
 * - `llava.json`: one JSON array of `{id, image, conversations:[{from:"human"|"gpt", value}]}`, as
 *   BioMed-VITAL releases its data. `id` is the candidate's global id; one gpt turn per round with the round's
 *   first answer; the first human turn starts with `<image>\n`.
 * - `jsonl`: one object per line, the LLaVA sample's fields and then: candidate_uuid, rank, score, image_id, image_uuid,
 *   pair_id, pmid, fig_label, modalities, caption, mentions, cluster_id, alternative_answers (per
 *   round, the second answer of the two-answer form, else null), form, status, generation_run_id,
 *   model, prompt_template_version, sample_index.
 * - `trl.jsonl`: preference pairs in TRL's conversational format, `{prompt, chosen, rejected}` (lists
 *   of `{role, content}`) plus id, candidate_id, candidate_uuid, other_candidate_id,
 *   other_candidate_uuid, round, rank, image, source, kinds, votes. See `buildPreferencePairs`.
 * - `trl-vision.jsonl`: the same pairs in TRL's vision format (`images` column, typed content parts);
 *   see `toTrlVisionRecord`.
 * - `card.md` / `card.json`: the dataset card (dataset-card.ts), also at the archive's root.
 * - `images.tar`: `images/<sha256>.<ext>` for each distinct image of the items that has bytes, by
 *   image id, after the card; then, when some have none, `MISSING.txt` with one line per such image,
 *   `<image uuid>\t<reason>` (`not-in-storage`: hash known, bytes gone; `no-file`: imported without
 *   its figure).
 */
// Types only, and the id codec: this module loads nothing with decorators, so that it stays a plain function library.
import { toGlobalId } from '../../platform/ids';
import type { ExportBytes } from './export-bytes';
import type { StoredRound } from '../candidates/conversation';
import type { PairwiseChoice, PreferenceKind, PreferenceSource } from '../preferences/preference.entity';

/** The enums' values, as the database and the JSON carry them. */
type Source = `${PreferenceSource}`;
type Kind = `${PreferenceKind}`;
type Choice = `${PairwiseChoice}`;

export const EXPORT_FORMATS = ['llava.json', 'jsonl', 'trl.jsonl', 'trl-vision.jsonl', 'images.tar', 'card.md', 'card.json'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const isExportFormat = (value: string): value is ExportFormat => (EXPORT_FORMATS as readonly string[]).includes(value);

export const EXPORT_CONTENT_TYPES: Record<ExportFormat, string> = {
  'llava.json': 'application/json; charset=utf-8',
  jsonl: 'application/x-ndjson; charset=utf-8',
  'trl.jsonl': 'application/x-ndjson; charset=utf-8',
  'trl-vision.jsonl': 'application/x-ndjson; charset=utf-8',
  'images.tar': 'application/x-tar',
  'card.md': 'text/markdown; charset=utf-8',
  'card.json': 'application/json; charset=utf-8',
};

/**
 * Ids in exports: `id` and every `*_id` field carry the API's global id (what `node(id:)` and the
 * `Node.id` fields take and give), so an exported row joins back to the API as it is; `*_uuid`
 * fields beside them carry the raw row id (the database's, and MISSING.txt's).
 */
export const candidateGlobalId = (uuid: string): string => toGlobalId('Candidate', uuid);
const nullableGlobalId = (type: string, uuid: string | null): string | null => (uuid == null ? null : toGlobalId(type, uuid));

/** `<dataset-name>-v<version>.<format>`, the name reduced to characters every file system accepts. */
export function exportFileName(name: string, version: number, format: ExportFormat): string {
  const safe = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[-.]+|-+$/g, '');
  return `${safe || 'dataset'}-v${version}.${format}`;
}

// ---------------------------------------------------------------------------------------------
// Image paths (shared by every format and the image archive)
// ---------------------------------------------------------------------------------------------

/** File extension by image type; any other type is `bin`. Also used by dataset-export.lines.ts (the same paths written by Postgres). */
export const IMAGE_EXTENSIONS: Record<string, string> = {
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/webp': 'webp',
  'image/tiff': 'tif',
  'image/gif': 'gif',
};

/** The archive's folder of images; `image` paths are relative to where the archive is unpacked. */
export const IMAGE_DIR = 'images';
export const MISSING_FILE = 'MISSING.txt';
/** The dataset card's files at the archive's root, before the images. */
export const CARD_MARKDOWN_FILE = 'card.md';
export const CARD_JSON_FILE = 'card.json';

/** `images/<sha256>.<ext>`; null when only the image's record is known (no bytes were ever stored). */
export function imagePath(contentHash: string | null, mimeType: string | null): string | null {
  if (!contentHash) return null;
  return `${IMAGE_DIR}/${contentHash}.${(mimeType && IMAGE_EXTENSIONS[mimeType]) ?? 'bin'}`;
}

export enum MissingReason {
  /** The image is a record without a file (imported without its figure). */
  NO_FILE = 'no-file',
  /** The image has a content hash but storage has no bytes under it. */
  NOT_IN_STORAGE = 'not-in-storage',
}

/** One line of MISSING.txt: `<image id>\t<reason>\n`. */
export const missingLine = (imageId: string, reason: MissingReason): string => `${imageId}\t${reason}\n`;

/** Bytes of MISSING.txt, known before its lines are (a tar entry states its size first); ids are UUIDs. */
export function missingFileSize(counts: Record<MissingReason, number>): number {
  const uuidLength = 36;
  return (Object.entries(counts) as [MissingReason, number][]).reduce((sum, [reason, n]) => sum + n * (uuidLength + reason.length + 2), 0);
}

// ---------------------------------------------------------------------------------------------
// LLaVA and JSONL
// ---------------------------------------------------------------------------------------------

/** One dataset item joined with its candidate and image, as the export query returns it. */
export interface ExportItemRow {
  rank: number;
  score: number | null;
  candidateId: string;
  rounds: StoredRound[];
  status: string;
  form: string;
  runId: string | null;
  model: string | null;
  promptTemplateVersion: string | null;
  sampleIndex: number;
  imageId: string;
  pairId: string | null;
  pmid: string | null;
  figLabel: string | null;
  caption: string;
  mentions: string[];
  modalities: string[];
  contentHash: string | null;
  mimeType: string | null;
  clusterId: number | null;
}

export interface LlavaTurn {
  from: 'human' | 'gpt';
  value: string;
}

export interface LlavaSample {
  id: string;
  image: string | null;
  conversations: LlavaTurn[];
}

export const IMAGE_TOKEN = '<image>\n';

/** LLaVA turns, first answer of each round (as `roundsToTurns`); the first human turn carries `<image>\n`. */
export function llavaConversation(rounds: StoredRound[]): LlavaTurn[] {
  return rounds.flatMap((r, i): LlavaTurn[] => [
    { from: 'human', value: i === 0 ? IMAGE_TOKEN + r.question : r.question },
    { from: 'gpt', value: r.answers[0] ?? '' },
  ]);
}

export function toLlavaSample(row: ExportItemRow): LlavaSample {
  return { id: candidateGlobalId(row.candidateId), image: imagePath(row.contentHash, row.mimeType), conversations: llavaConversation(row.rounds) };
}

/** A line of the `.jsonl` export: the LLaVA sample's fields first, then what a data scientist filters on. */
export interface JsonlRecord extends LlavaSample {
  candidate_uuid: string;
  rank: number;
  score: number | null;
  image_id: string;
  image_uuid: string;
  pair_id: string | null;
  pmid: string | null;
  fig_label: string | null;
  modalities: string[];
  caption: string;
  mentions: string[];
  cluster_id: number | null;
  /** Per round, the second answer of the two-answer form (the first is in `conversations`); null in the one-answer form. */
  alternative_answers: (string | null)[];
  form: string;
  status: string;
  generation_run_id: string | null;
  model: string | null;
  prompt_template_version: string | null;
  sample_index: number;
}

export function toJsonlRecord(row: ExportItemRow): JsonlRecord {
  return {
    ...toLlavaSample(row),
    candidate_uuid: row.candidateId,
    rank: row.rank,
    score: row.score,
    image_id: toGlobalId('Image', row.imageId),
    image_uuid: row.imageId,
    pair_id: row.pairId,
    pmid: row.pmid,
    fig_label: row.figLabel,
    modalities: row.modalities,
    caption: row.caption,
    mentions: row.mentions,
    cluster_id: row.clusterId,
    alternative_answers: row.rounds.map((r) => r.answers[1] ?? null),
    form: row.form,
    status: row.status,
    generation_run_id: nullableGlobalId('Run', row.runId),
    model: row.model,
    prompt_template_version: row.promptTemplateVersion,
    sample_index: row.sampleIndex,
  };
}

// ---------------------------------------------------------------------------------------------
// TRL preference pairs
// ---------------------------------------------------------------------------------------------

/** A preference on the answers of one round of the row's candidate (`other_candidate_id` null). */
export interface RoundPreference {
  source: Source;
  kind: Kind;
  /** The annotator's user id or the judge model. */
  author: string | null;
  roundIndex: number;
  answerIndex: number | null;
  choice: Choice | null;
  rating: number | null;
  accepted: boolean | null;
}

/** A PAIRWISE preference between the row's candidate and another one, seen from the row's side. */
export interface CandidatePreference {
  source: Source;
  author: string | null;
  /** `self` when the row's candidate was preferred. */
  winner: 'self' | 'other' | 'tie';
  otherCandidateId: string;
  otherImageId: string;
  otherRounds: StoredRound[];
  /** The other candidate's rank in the same dataset; null when it is not in it. */
  otherRank: number | null;
}

/** One dataset item with the preferences on its candidate, oldest first. */
export interface TrlSourceRow {
  rank: number;
  candidateId: string;
  imageId: string;
  contentHash: string | null;
  mimeType: string | null;
  rounds: StoredRound[];
  roundPrefs: RoundPreference[] | null;
  candidatePrefs: CandidatePreference[] | null;
}

export interface ChatMessage {
  role: 'user' | 'assistant';
  content: string;
}

export interface TrlPair {
  prompt: ChatMessage[];
  chosen: ChatMessage[];
  rejected: ChatMessage[];
  /** `<candidate id>:round:<k>` or `<candidate id>:vs:<other candidate id>`. */
  id: string;
  candidate_id: string;
  other_candidate_id: string | null;
  round: number | null;
  rank: number;
  image: string | null;
  source: Source;
  /** The kinds of preference that voted in the deciding source. */
  kinds: Kind[];
  votes: { chosen: number; rejected: number };
}

/** `<candidate>:round:<k>` or `<candidate>:vs:<other candidate>`, with whichever ids are given. */
const trlPairId = (candidate: string, round: number | null, other: string | null): string =>
  other == null ? `${candidate}:round:${round}` : `${candidate}:vs:${other}`;

/** Higher first: a clinician's judgement of a pair decides it whenever there is one. */
export const SOURCE_PRECEDENCE: readonly Source[] = ['CLINICIAN', 'MODEL'];

/** One author's verdict on a pair through one kind of judgement: side 0 or 1 better, or null for equal. */
interface Vote {
  source: Source;
  kind: Kind;
  winner: 0 | 1 | null;
}

interface Decision {
  source: Source;
  winner: 0 | 1;
  kinds: Kind[];
  chosen: number;
  rejected: number;
}

/**
 * The first source in precedence order that judged the pair at all decides it by majority of its
 * votes; equal votes (ties included) give no pair, and a lower source is then not consulted.
 */
function decide(votes: Vote[]): Decision | null {
  for (const source of SOURCE_PRECEDENCE) {
    const mine = votes.filter((v) => v.source === source);
    if (!mine.length) continue;
    const zero = mine.filter((v) => v.winner === 0).length;
    const one = mine.filter((v) => v.winner === 1).length;
    if (zero === one) return null;
    const winner = zero > one ? 0 : 1;
    const kinds = [...new Set(mine.filter((v) => v.winner === winner).map((v) => v.kind))].sort();
    return { source, winner, kinds, chosen: Math.max(zero, one), rejected: Math.min(zero, one) };
  }
  return null;
}

const authorKey = (p: { source: string; author: string | null }) => `${p.source}\u0000${p.author ?? ''}`;

/** Each author's latest judgement counts once per kind (preferences arrive oldest first). */
function roundVotes(prefs: RoundPreference[]): Vote[] {
  const pairwise = new Map<string, RoundPreference>();
  const byAnswer = new Map<string, { source: Source; kind: Kind; values: [number | null, number | null] }>();
  for (const p of prefs) {
    if (p.kind === 'PAIRWISE') {
      if (p.choice) pairwise.set(authorKey(p), p);
      continue;
    }
    if (p.answerIndex !== 0 && p.answerIndex !== 1) continue;
    const value = p.kind === 'RATING' ? p.rating : p.accepted == null ? null : Number(p.accepted);
    if (value == null) continue;
    const key = `${p.kind}\u0000${authorKey(p)}`;
    const entry = byAnswer.get(key) ?? { source: p.source, kind: p.kind, values: [null, null] };
    entry.values[p.answerIndex] = value;
    byAnswer.set(key, entry);
  }
  const votes: Vote[] = [];
  for (const p of pairwise.values()) {
    votes.push({ source: p.source, kind: p.kind, winner: p.choice === 'A' ? 0 : p.choice === 'B' ? 1 : null });
  }
  for (const { source, kind, values: [a, b] } of byAnswer.values()) {
    if (a == null || b == null) continue; // one answer judged alone compares nothing
    votes.push({ source, kind, winner: a > b ? 0 : b > a ? 1 : null });
  }
  return votes;
}

/** The conversation as chat messages (first answer of each round), `<image>\n` before the first question. */
export function chatMessages(rounds: StoredRound[]): ChatMessage[] {
  return llavaConversation(rounds).map((t) => ({ role: t.from === 'human' ? 'user' : 'assistant', content: t.value }));
}

const sameMessage = (a: ChatMessage, b: ChatMessage) => a.role === b.role && a.content === b.content;

/**
 * TRL preference pairs for one dataset item, in this order:
 *
 * 1. One pair per round with two (different) answers that has a decision. The prompt is the
 *    conversation so far (earlier rounds with their first answers, `<image>\n` before the first
 *    question) and the round's question; chosen and rejected are one assistant message each.
 * 2. One pair per other candidate compared with this one as a whole conversation (PAIRWISE with
 *    `other_candidate_id`), about the same image: the prompt is their common opening, cut to end on
 *    a user message (often empty: TRL then reads the whole conversations as the completions);
 *    chosen and rejected are the rest of each. When both candidates are in the dataset the pair is
 *    written once, with the better-ranked one; the other may also be outside the dataset.
 *
 * Deciding, duplicates and precedence: every author (a clinician, or a judge model) has one vote per
 * kind of judgement on a pair, from their latest judgement of that kind: PAIRWISE A or B (TIE votes
 * "equal"); ACCEPTANCE when the author judged both answers (one accepted and one rejected votes for
 * the accepted one; both the same votes "equal"; one answer alone compares nothing); RATING when the
 * author rated both answers (higher wins; equal votes "equal"). Clinicians take precedence: if any
 * clinician voted on the pair, their votes alone decide and model votes are ignored; otherwise the
 * models' votes decide. The majority of decisive votes wins; a tie (including only "equal" votes)
 * gives no pair. So each (candidate, round) and each pair of candidates gives at most one pair;
 * `source`, `kinds` and `votes` say what decided it.
 */
export function buildPreferencePairs(row: TrlSourceRow): TrlPair[] {
  const image = imagePath(row.contentHash, row.mimeType);
  const pairs: TrlPair[] = [];
  const byRound = new Map<number, RoundPreference[]>();
  for (const p of row.roundPrefs ?? []) {
    if (p.roundIndex == null) continue;
    const list = byRound.get(p.roundIndex) ?? [];
    list.push(p);
    byRound.set(p.roundIndex, list);
  }
  const messages = chatMessages(row.rounds);
  for (const roundIndex of [...byRound.keys()].sort((a, b) => a - b)) {
    const round = row.rounds[roundIndex];
    if (!round || round.answers.length < 2 || round.answers[0] === round.answers[1]) continue;
    const decision = decide(roundVotes(byRound.get(roundIndex)!));
    if (!decision) continue;
    pairs.push({
      prompt: messages.slice(0, 2 * roundIndex + 1),
      chosen: [{ role: 'assistant', content: round.answers[decision.winner] }],
      rejected: [{ role: 'assistant', content: round.answers[1 - decision.winner] }],
      id: trlPairId(row.candidateId, roundIndex, null),
      candidate_id: row.candidateId,
      other_candidate_id: null,
      round: roundIndex,
      rank: row.rank,
      image,
      source: decision.source,
      kinds: decision.kinds,
      votes: { chosen: decision.chosen, rejected: decision.rejected },
    });
  }

  const byOther = new Map<string, CandidatePreference[]>();
  for (const p of row.candidatePrefs ?? []) {
    // A pair of two items of the dataset is written once, with the better-ranked one.
    if (p.otherCandidateId === row.candidateId || (p.otherRank != null && p.otherRank < row.rank)) continue;
    // Two conversations about different figures share no prompt to prefer one answer under.
    if (p.otherImageId !== row.imageId) continue;
    const list = byOther.get(p.otherCandidateId) ?? [];
    list.push(p);
    byOther.set(p.otherCandidateId, list);
  }
  for (const [otherId, prefs] of [...byOther.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const latest = new Map<string, CandidatePreference>();
    for (const p of prefs) latest.set(authorKey(p), p);
    const votes = [...latest.values()].map((p): Vote => ({ source: p.source, kind: 'PAIRWISE', winner: p.winner === 'self' ? 0 : p.winner === 'other' ? 1 : null }));
    const decision = decide(votes);
    if (!decision) continue;
    const other = chatMessages(prefs[0].otherRounds);
    const [winning, losing] = decision.winner === 0 ? [messages, other] : [other, messages];
    let common = 0;
    while (common < winning.length && common < losing.length && sameMessage(winning[common], losing[common])) common++;
    // The prompt ends with a user message (messages alternate user, assistant from index 0).
    const promptLength = common % 2 === 1 ? common : Math.max(0, common - 1);
    const chosen = winning.slice(promptLength);
    const rejected = losing.slice(promptLength);
    if (!chosen.length || !rejected.length || common === Math.max(winning.length, losing.length)) continue;
    pairs.push({
      prompt: winning.slice(0, promptLength),
      chosen,
      rejected,
      id: trlPairId(row.candidateId, null, otherId),
      candidate_id: row.candidateId,
      other_candidate_id: otherId,
      round: null,
      rank: row.rank,
      image,
      source: decision.source,
      kinds: decision.kinds,
      votes: { chosen: decision.chosen, rejected: decision.rejected },
    });
  }
  return pairs;
}

/** A line of `trl.jsonl`: the pair with the API's global ids, the raw row ids beside them. */
export interface TrlRecord {
  prompt: ChatMessage[];
  chosen: ChatMessage[];
  rejected: ChatMessage[];
  /** `<candidate id>:round:<k>` or `<candidate id>:vs:<other candidate id>`, global ids. */
  id: string;
  candidate_id: string;
  candidate_uuid: string;
  other_candidate_id: string | null;
  other_candidate_uuid: string | null;
  round: number | null;
  rank: number;
  image: string | null;
  source: Source;
  kinds: Kind[];
  votes: { chosen: number; rejected: number };
}

export function toTrlRecord(pair: TrlPair): TrlRecord {
  const candidate = candidateGlobalId(pair.candidate_id);
  const other = pair.other_candidate_id == null ? null : candidateGlobalId(pair.other_candidate_id);
  return {
    prompt: pair.prompt,
    chosen: pair.chosen,
    rejected: pair.rejected,
    id: trlPairId(candidate, pair.round, other),
    candidate_id: candidate,
    candidate_uuid: pair.candidate_id,
    other_candidate_id: other,
    other_candidate_uuid: pair.other_candidate_id,
    round: pair.round,
    rank: pair.rank,
    image: pair.image,
    source: pair.source,
    kinds: pair.kinds,
    votes: pair.votes,
  };
}

/**
 * Writes the `trl.jsonl` lines of one dataset item, each ending in a newline:
 * `JSON.stringify(toTrlRecord(pair))` byte for byte (test/datasets/dataset-export-lines.test.ts
 * compares them), without the record objects. An item's round pairs repeat the conversation so far
 * in their prompts (round k carries 2k + 1 messages), so each message is serialised and encoded once
 * per item and copied: JSON.stringify of whole records was the TRL export's top frame (issue 14).
 */
const COMMA = Buffer.from(',');

export function writeTrlLines(row: TrlSourceRow, out: ExportBytes): void {
  const pairs = buildPreferencePairs(row);
  if (!pairs.length) return;
  const encoded = new Map<ChatMessage, Buffer>();
  const message = (m: ChatMessage): Buffer => {
    let bytes = encoded.get(m);
    if (bytes === undefined) {
      bytes = Buffer.from('{"role":' + JSON.stringify(m.role) + ',"content":' + JSON.stringify(m.content) + '}', 'utf8');
      encoded.set(m, bytes);
    }
    return bytes;
  };
  // Round pairs' prompts are prefixes of one message list (the same objects): the longest prefix
  // met so far is kept encoded as `m0,m1,…` with where each message ends, so a prompt is one copy.
  let prefix: ChatMessage[] = [];
  let prefixBytes: Buffer = Buffer.alloc(0);
  let prefixEnds: number[] = [];
  const encodedPrefix = (list: ChatMessage[]): Buffer | null => {
    if (list.length === 0) return null;
    let shared = 0;
    while (shared < list.length && shared < prefix.length && list[shared] === prefix[shared]) shared++;
    if (shared === list.length) return prefixBytes.subarray(0, prefixEnds[list.length - 1]);
    if (shared !== prefix.length) return null; // not an extension of the prefix kept: written message by message
    const parts = [prefixBytes];
    let end = prefixBytes.length;
    for (let i = shared; i < list.length; i++) {
      const bytes = message(list[i]);
      if (i) {
        parts.push(COMMA);
        end += 1;
      }
      parts.push(bytes);
      end += bytes.length;
      prefixEnds.push(end);
    }
    prefix = list;
    prefixBytes = Buffer.concat(parts, end);
    prefixEnds = prefixEnds.slice(0, list.length);
    return prefixBytes;
  };
  const messages = (list: ChatMessage[]): void => {
    out.string('[');
    const encoded = encodedPrefix(list);
    if (encoded) out.bytes(encoded);
    else {
      for (let i = 0; i < list.length; i++) {
        if (i) out.string(',');
        out.bytes(message(list[i]));
      }
    }
    out.string(']');
  };
  const candidate = candidateGlobalId(row.candidateId);
  const candidateIds = ',"candidate_id":' + JSON.stringify(candidate) + ',"candidate_uuid":' + JSON.stringify(row.candidateId);
  for (const pair of pairs) {
    const other = pair.other_candidate_id == null ? null : candidateGlobalId(pair.other_candidate_id);
    out.string('{"prompt":');
    messages(pair.prompt);
    out.string(',"chosen":');
    messages(pair.chosen);
    out.string(',"rejected":');
    messages(pair.rejected);
    out.string(
      ',"id":' + JSON.stringify(trlPairId(candidate, pair.round, other)) +
        candidateIds +
        ',"other_candidate_id":' + JSON.stringify(other) +
        ',"other_candidate_uuid":' + JSON.stringify(pair.other_candidate_id) +
        ',"round":' + JSON.stringify(pair.round) +
        ',"rank":' + JSON.stringify(pair.rank) +
        ',"image":' + JSON.stringify(pair.image) +
        ',"source":' + JSON.stringify(pair.source) +
        ',"kinds":' + JSON.stringify(pair.kinds) +
        ',"votes":' + JSON.stringify(pair.votes) +
        '}\n',
    );
  }
}

// ---------------------------------------------------------------------------------------------
// TRL vision preference pairs
// ---------------------------------------------------------------------------------------------

/** A part of a vision message's content, as TRL's vision datasets type them. */
export type ContentPart = { type: 'image' } | { type: 'text'; text: string };

export interface VisionMessage {
  role: ChatMessage['role'];
  content: ContentPart[];
}

/**
 * A line of `trl-vision.jsonl`: TRL's conversational vision preference format (the `images` column,
 * content as typed parts), then the same fields as `trl.jsonl` but `image`.
 */
export interface TrlVisionRecord extends Omit<TrlRecord, 'prompt' | 'chosen' | 'rejected' | 'image'> {
  images: string[];
  prompt: VisionMessage[];
  chosen: VisionMessage[];
  rejected: VisionMessage[];
}

/**
 * Messages with typed content. The message that opens the conversation carries `<image>\n` in the
 * text formats; here it becomes an `{type: "image"}` part before its text, so that each side holds
 * one image part per entry of `images`. A figure without bytes (no path) gets no image part and
 * an empty `images`.
 */
function visionMessages(messages: ChatMessage[], opensConversation: boolean, withImage: boolean): VisionMessage[] {
  return messages.map((m, i) => {
    if (opensConversation && i === 0 && m.content.startsWith(IMAGE_TOKEN)) {
      const text: ContentPart = { type: 'text', text: m.content.slice(IMAGE_TOKEN.length) };
      return { role: m.role, content: withImage ? [{ type: 'image' }, text] : [text] };
    }
    return { role: m.role, content: [{ type: 'text', text: m.content }] };
  });
}

export function toTrlVisionRecord(pair: TrlPair): TrlVisionRecord {
  const { prompt, chosen, rejected, image, ...rest } = toTrlRecord(pair);
  const withImage = image != null;
  // With an empty prompt (implicit prompt), chosen and rejected each open the conversation.
  const completionsOpen = prompt.length === 0;
  return {
    images: withImage ? [image] : [],
    prompt: visionMessages(prompt, true, withImage),
    chosen: visionMessages(chosen, completionsOpen, withImage),
    rejected: visionMessages(rejected, completionsOpen, withImage),
    ...rest,
  };
}
