import * as tokenizersLibrary from '@huggingface/tokenizers';

/**
 * A Hugging Face `tokenizer.json`, loaded with `@huggingface/tokenizers` (pure JS), that encodes
 * batches straight into the int64 tensors a model takes. The library neither truncates nor pads, so
 * this does both: special tokens are always kept (a long text loses its tail, not its final [SEP]),
 * and rows are padded on the right with the tokenizer's pad id and a zero attention mask.
 */
export interface TextTokenizer {
  /** Row-major `[texts.length, maxLength]` ids and mask (1 on tokens, 0 on padding). */
  encodeBatch(texts: readonly string[], maxLength: number): { inputIds: BigInt64Array; attentionMask: BigInt64Array };
  /** The ids of one text, special tokens included, untruncated. */
  encode(text: string): number[];
  tokenToId(token: string): number | undefined;
  readonly padId: number;
  /** The ids the template adds before and after the text (BERT: [CLS] = [101] and [SEP] = [102]). */
  readonly specialTokens: { prefix: readonly number[]; suffix: readonly number[] };
}

/**
 * The part of `@huggingface/tokenizers` used here. Its bundled .d.ts files use extensionless relative
 * imports inside an ESM package, which `moduleResolution: node16` cannot follow, so every export
 * types as `any`; these declarations restore the types (checked against its 0.2.0 sources).
 */
interface HfTokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): { ids: number[]; tokens: string[] };
  token_to_id(token: string): number | undefined;
  model: { encode(words: string[]): string[]; unk_token?: string; unk_token_id?: number } | null;
  normalizer: { normalize(text: string): string; config: Record<string, unknown> } | null;
}
interface HfTokenizersModule {
  Tokenizer: new (tokenizerJson: object, tokenizerConfig: object) => HfTokenizer;
  WordPiece: abstract new (...args: never[]) => object;
  BertNormalizer: abstract new (...args: never[]) => object;
}
const hf = tokenizersLibrary as unknown as HfTokenizersModule;

/** Most distinct words remembered per tokenizer; the cache starts over when it is full. */
const WORD_CACHE_LIMIT = 100_000;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
const MODEL_TYPES = ['WordPiece', 'BPE', 'Unigram'];
/** Held locally: in a vm sandbox (jest) each lookup of a global in a per-token loop is slow. */
const toBigInt = BigInt;
const isInteger = Number.isInteger;

/** Parses and checks a `tokenizer.json`; throws an Error saying why when it is not usable. */
export function loadTokenizer(tokenizerJson: string): TextTokenizer {
  let parsed: unknown;
  try {
    parsed = JSON.parse(tokenizerJson);
  } catch (error) {
    throw new Error(`tokenizer.json is not valid JSON: ${(error as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('tokenizer.json must be a JSON object');
  const config = parsed as Record<string, unknown>;
  const model = config.model as Record<string, unknown> | undefined;
  if (!model || typeof model !== 'object' || !model.vocab || typeof model.vocab !== 'object' || Object.keys(model.vocab).length === 0) {
    throw new Error('tokenizer.json has no model with a vocabulary');
  }
  if (model.type !== undefined && !MODEL_TYPES.includes(model.type as string)) throw new Error(`tokenizer.json: unknown model type ${JSON.stringify(model.type)}`);
  if (config.added_tokens !== undefined && !Array.isArray(config.added_tokens)) throw new Error('tokenizer.json: added_tokens must be an array');
  // Saved tokenizers always carry these keys (null when unused); the library insists on them.
  const complete = { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, added_tokens: [], ...config };

  let tokenizer: HfTokenizer;
  let prefix: number[];
  let suffix: number[];
  try {
    tokenizer = new hf.Tokenizer(complete, {});
    if (tokenizer.model instanceof hf.WordPiece && tokenizer.model.unk_token_id === undefined) {
      throw new Error(`the WordPiece unk_token ${JSON.stringify(tokenizer.model.unk_token) ?? '(none)'} is not in the vocabulary`);
    }
    speedUp(tokenizer);
    ({ prefix, suffix } = templateSpecials(tokenizer));
  } catch (error) {
    throw new Error(`tokenizer.json is not a usable tokenizer: ${(error as Error).message}`);
  }
  const padId = resolvePadId(config, tokenizer);

  const encodeBody = (text: string) => checkIds(tokenizer.encode(text, { add_special_tokens: false }).ids, text);
  return {
    padId,
    specialTokens: { prefix, suffix },
    tokenToId: (token) => tokenizer.token_to_id(token),
    encode: (text) => checkIds(tokenizer.encode(text).ids, text),
    encodeBatch(texts, maxLength) {
      const room = maxLength - prefix.length - suffix.length;
      if (!Number.isInteger(maxLength) || room < 0) throw new Error(`maxLength must be an integer of at least ${prefix.length + suffix.length}, got ${maxLength}`);
      const inputIds = new BigInt64Array(texts.length * maxLength);
      const attentionMask = new BigInt64Array(texts.length * maxLength);
      const pad = BigInt(padId);
      for (let row = 0; row < texts.length; row++) {
        const body = encodeBody(texts[row]);
        const bodyLength = Math.min(body.length, room);
        const offset = row * maxLength;
        let at = offset;
        for (const id of prefix) inputIds[at++] = toBigInt(id);
        for (let i = 0; i < bodyLength; i++) inputIds[at++] = toBigInt(body[i]);
        for (const id of suffix) inputIds[at++] = toBigInt(id);
        attentionMask.fill(1n, offset, at);
        inputIds.fill(pad, at, offset + maxLength);
      }
      return { inputIds, attentionMask };
    },
  };
}

/** A vocabulary without an unknown token yields no id for a word it cannot spell. */
function checkIds(ids: number[], text: string): number[] {
  for (const id of ids) {
    if (!isInteger(id)) throw new Error(`the tokenizer has no id for part of the text ${JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text)}`);
  }
  return ids;
}

/**
 * The ids the post-processor adds around a single text, found by encoding a probe with and without
 * special tokens: `[CLS] $A [SEP]` gives prefix [CLS] and suffix [SEP].
 */
function templateSpecials(tokenizer: HfTokenizer): { prefix: number[]; suffix: number[] } {
  const probe = 'a';
  const bare = checkIds(tokenizer.encode(probe, { add_special_tokens: false }).ids, probe);
  const full = checkIds(tokenizer.encode(probe).ids, probe);
  if (bare.length === 0) throw new Error(`it makes no tokens of the text "${probe}"`);
  for (let start = 0; start + bare.length <= full.length; start++) {
    if (bare.every((id, i) => full[start + i] === id)) return { prefix: full.slice(0, start), suffix: full.slice(start + bare.length) };
  }
  throw new Error('the post-processor does not keep the text as one run of tokens');
}

function resolvePadId(config: Record<string, unknown>, tokenizer: HfTokenizer): number {
  const padding = config.padding as { pad_id?: unknown; pad_token?: unknown } | null | undefined;
  if (padding && Number.isInteger(padding.pad_id)) return padding.pad_id as number;
  const byToken = typeof padding?.pad_token === 'string' ? tokenizer.token_to_id(padding.pad_token) : undefined;
  return byToken ?? tokenizer.token_to_id('[PAD]') ?? 0;
}

/**
 * Two exact shortcuts around the library's hot spots. WordPiece splits each pre-token on its own,
 * so a word's pieces are remembered. BertNormalizer looks at every character through regular
 * expressions; for printable ASCII its whole effect is lowercasing (or nothing).
 */
function speedUp(tokenizer: HfTokenizer): void {
  const model = tokenizer.model;
  if (model && model instanceof hf.WordPiece) {
    const encodeWords = model.encode.bind(model);
    const cache = new Map<string, string[]>();
    model.encode = (words: string[]) => {
      const out: string[] = [];
      for (const word of words) {
        let pieces = cache.get(word);
        if (!pieces) {
          if (cache.size >= WORD_CACHE_LIMIT) cache.clear();
          pieces = encodeWords([word]);
          cache.set(word, pieces);
        }
        for (const piece of pieces) out.push(piece);
      }
      return out;
    };
  }
  const normalizer = tokenizer.normalizer;
  if (normalizer && normalizer instanceof hf.BertNormalizer) {
    const normalize = normalizer.normalize.bind(normalizer);
    const lowercase = Boolean(normalizer.config.lowercase);
    normalizer.normalize = (text: string) => (PRINTABLE_ASCII.test(text) ? (lowercase ? text.toLowerCase() : text) : normalize(text));
  }
}
