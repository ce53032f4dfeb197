import type { StoredRound } from '../candidates/conversation';

/** SINGLE_ANSWER: each question has one answer. TWO_ANSWERS: each question has alternatives A and B for clinicians to compare. */
export type ConversationForm = 'SINGLE_ANSWER' | 'TWO_ANSWERS';

export type ParsedReply =
  | { kind: 'ok'; rounds: StoredRound[] }
  | { kind: 'refused'; reason: string }
  | { kind: 'parse_failed'; reason: string; rounds: StoredRound[] };

type Speaker = 'user' | 'assistant';
/** Which alternative an assistant turn claims to be; null when its label does not say. */
type AnswerSlot = 'A' | 'B' | null;

interface Turn {
  speaker: Speaker;
  slot: AnswerSlot;
  text: string;
}

interface RawRound {
  question: string;
  answers: Turn[];
}

const REFUSAL_WINDOW = 200;
const REFUSAL_REASON_LENGTH = 500;

const USER_NAMES = new Set(['user', 'human', 'question', 'q']);

/**
 * A line that opens a turn. Groups: 1 emphasis opening (** __ * _), 2 speaker name,
 * 3 number suffix (`Question 1`, `A2`), 4/5 letter suffix (`Answer B`, `Assistant (A)`), 6 the rest of the line.
 * The emphasis may close before or after the colon (`**User**:`, `**User:**`), but only once, so
 * bold text at the start of the content itself is left alone.
 */
const TURN_LABEL = new RegExp(
  [
    String.raw`^\s*`,
    String.raw`(?:#{1,6}\s+)?`,
    String.raw`(?:(?:[-*+•]|\d{1,3}[.)])\s+){0,2}`,
    String.raw`(\*\*|__|\*|_)?\s*`,
    String.raw`(assistant|answer|question|human|user|gpt|ai|q|a)`,
    String.raw`(?:\s*#?\s*\(?(\d{1,3})\)?|\s+\(?([ab])\)?|\s*\(([ab])\))?`,
    String.raw`\s*(?:\1\s*:|:\s*\1|:)`,
    String.raw`(.*)$`,
  ].join(''),
  'i',
);

const CODE_FENCE = /^\s*(?:```|~~~)/;
const HORIZONTAL_RULE = /^\s*([-*_=])(?:\s*\1){2,}\s*$/;
const MARKDOWN_HEADING = /^\s*#{1,6}\s/;
const ROUND_HEADER = /^[\s*_#]*(?:round|turn|exchange)\s*\d+\s*[:.]?[\s*_]*$/i;

/**
 * Phrases that open a refusal. Inability alone is not enough ("I cannot determine the grade from
 * this crop" is an answer), so each pattern pairs it with an apology, an AI disclaimer, or a
 * request-shaped verb.
 */
const REFUSAL_PATTERNS: RegExp[] = [
  /\b(?:i'm|i am) sorry\b[^.!?\n]{0,120}\b(?:can't|cannot|can not|unable|not able|won't)\b/i,
  /\bas an ai\b[^.!?\n]{0,120}\b(?:can't|cannot|can not|unable|not able|won't)\b/i,
  /\bi(?: can't| cannot| can not| won't| am unable to|'m unable to| am not able to|'m not able to)\s+(?:help|assist|provide|comply|fulfil|fulfill|do that|process|analy[sz]e|interpret|view|generate|create)\b/i,
];

export function parseConversationReply(text: string, options: { form: ConversationForm; minRounds: number }): ParsedReply {
  const turns = readTurns(text, options.form);
  if (turns.length === 0) return noTurnsFound(text);

  const rounds: StoredRound[] = [];
  for (const [index, raw] of groupIntoRounds(turns).entries()) {
    const checked = options.form === 'SINGLE_ANSWER' ? toSingleAnswerRound(raw) : toTwoAnswerRound(raw);
    if (typeof checked === 'string') return { kind: 'parse_failed', reason: `round ${index + 1}: ${checked}`, rounds };
    rounds.push(checked);
  }

  if (rounds.length < options.minRounds) {
    return { kind: 'parse_failed', reason: `expected at least ${options.minRounds} rounds, got ${rounds.length}`, rounds };
  }
  return { kind: 'ok', rounds };
}

export function looksLikeRefusal(text: string): boolean {
  const normalized = text.trim().replace(/[\u2018\u2019\u02bc]/g, "'");
  return REFUSAL_PATTERNS.some((pattern) => {
    const match = pattern.exec(normalized);
    return match !== null && match.index < REFUSAL_WINDOW;
  });
}

function noTurnsFound(text: string): ParsedReply {
  if (looksLikeRefusal(text)) return { kind: 'refused', reason: text.trim().slice(0, REFUSAL_REASON_LENGTH) };
  return { kind: 'parse_failed', reason: 'no User/Assistant turns found', rounds: [] };
}

/**
 * Splits the reply into labelled turns. A boundary line (code fence, horizontal rule, heading,
 * "Round 2") ends the current turn, and whatever follows it up to the next label is dropped:
 * that is where models put "I hope this helps" and similar commentary.
 */
function readTurns(text: string, form: ConversationForm): Turn[] {
  const turns: Turn[] = [];
  let open: { turn: Omit<Turn, 'text'>; lines: string[] } | null = null;
  const closeOpenTurn = () => {
    if (open) turns.push({ ...open.turn, text: open.lines.join('\n').trim() });
    open = null;
  };

  for (const line of text.replace(/\r\n?/g, '\n').split('\n')) {
    const label = matchTurnLabel(line, form);
    if (label) {
      closeOpenTurn();
      open = { turn: label.turn, lines: [label.rest] };
    } else if (isBoundaryLine(line)) {
      closeOpenTurn();
    } else {
      open?.lines.push(line);
    }
  }
  closeOpenTurn();
  return dropBeforeFirstQuestion(turns);
}

function matchTurnLabel(line: string, form: ConversationForm): { turn: Omit<Turn, 'text'>; rest: string } | null {
  const match = TURN_LABEL.exec(line);
  if (!match) return null;
  const [, , name, number, letter, parenthesizedLetter, rest] = match;
  const speaker: Speaker = USER_NAMES.has(name.toLowerCase()) ? 'user' : 'assistant';
  const slot = speaker === 'assistant' ? answerSlot(letter ?? parenthesizedLetter, number, form) : null;
  return { turn: { speaker, slot }, rest };
}

/**
 * Letters always name an alternative. Numbers are ambiguous: in the two-answer form `Answer 1`/`Answer 2`
 * are the alternatives, while in the single-answer form `Question 3` ... `Answer 3` numbers the rounds.
 */
function answerSlot(letter: string | undefined, number: string | undefined, form: ConversationForm): AnswerSlot {
  if (letter) return letter.toUpperCase() as 'A' | 'B';
  if (form === 'TWO_ANSWERS' && number === '1') return 'A';
  if (form === 'TWO_ANSWERS' && number === '2') return 'B';
  return null;
}

function isBoundaryLine(line: string): boolean {
  return CODE_FENCE.test(line) || HORIZONTAL_RULE.test(line) || MARKDOWN_HEADING.test(line) || ROUND_HEADER.test(line);
}

function dropBeforeFirstQuestion(turns: Turn[]): Turn[] {
  const first = turns.findIndex((turn) => turn.speaker === 'user');
  return first === -1 ? [] : turns.slice(first);
}

function groupIntoRounds(turns: Turn[]): RawRound[] {
  const rounds: RawRound[] = [];
  for (const turn of turns) {
    if (turn.speaker === 'user') rounds.push({ question: turn.text, answers: [] });
    else rounds[rounds.length - 1].answers.push(turn);
  }
  return rounds;
}

/** Returns the round, or a description of what is wrong with it. */
function toSingleAnswerRound(raw: RawRound): StoredRound | string {
  if (!raw.question) return 'empty question';
  if (raw.answers.some((answer) => answer.slot !== null)) return 'found alternative answers (A/B) but one answer was expected';
  const texts = raw.answers.map((answer) => answer.text).filter((answer) => answer.length > 0);
  if (texts.length === 0) return 'no answer';
  return { question: raw.question, answers: [texts.join('\n\n')] };
}

/** Labelled answers go to their slot, unlabelled ones fill the free slots in order. */
function toTwoAnswerRound(raw: RawRound): StoredRound | string {
  if (!raw.question) return 'empty question';
  if (raw.answers.length !== 2) return `expected 2 answers, got ${raw.answers.length}`;

  const bySlot: Partial<Record<'A' | 'B', string>> = {};
  for (const answer of raw.answers.filter((turn) => turn.slot !== null)) {
    const slot = answer.slot as 'A' | 'B';
    if (bySlot[slot] !== undefined) return `answer ${slot} given twice`;
    bySlot[slot] = answer.text;
  }
  for (const answer of raw.answers.filter((turn) => turn.slot === null)) {
    bySlot[bySlot.A === undefined ? 'A' : 'B'] = answer.text;
  }

  const answers = [bySlot.A ?? '', bySlot.B ?? ''];
  const emptyIndex = answers.findIndex((answer) => answer.length === 0);
  if (emptyIndex !== -1) return `answer ${emptyIndex === 0 ? 'A' : 'B'} is empty`;
  return { question: raw.question, answers };
}
