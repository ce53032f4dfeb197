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
  model: { encode(words: string[]): string[]; unk_token?: string; unk_token_id?: number; fuse_unk?: boolean; tokens_to_ids: Map<string, number> } | null;
  normalizer: { normalize(text: string): string; config: Record<string, unknown> } | null;
  pre_tokenizer: object | null;
  post_processor: { config: Record<string, unknown> } | null;
  /** Added tokens by content, and by normalized content for those matched after normalization. */
  added_tokens_map: Map<string, { id: number }>;
  config: Record<string, unknown>;
}
interface HfTokenizersModule {
  Tokenizer: new (tokenizerJson: object, tokenizerConfig: object) => HfTokenizer;
  WordPiece: abstract new (...args: never[]) => object;
  BertNormalizer: abstract new (...args: never[]) => object;
  BertPreTokenizer: abstract new (...args: never[]) => object;
  BertProcessingPostProcessor: abstract new (...args: never[]) => object;
  TemplateProcessingPostProcessor: abstract new (...args: never[]) => object;
}
const hf = tokenizersLibrary as unknown as HfTokenizersModule;

/** Most distinct words remembered per tokenizer; the cache starts over when it is full. */
const WORD_CACHE_LIMIT = 100_000;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
/** A space-free chunk of printable ASCII, and how BertPreTokenizer splits one: runs of letters and digits, every other character alone. */
const ASCII_CHUNK = /^[\x21-\x7e]+$/;
const ASCII_PRE_TOKENS = /[A-Za-z0-9]+|[^A-Za-z0-9]/g;
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
  const writeHead = chunkedWriter(tokenizer, encodeBody);
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
        const offset = row * maxLength;
        let at = offset;
        for (const id of prefix) inputIds[at++] = toBigInt(id);
        if (writeHead) at = writeHead(texts[row], room, inputIds, at);
        else {
          const body = encodeBody(texts[row]);
          const bodyLength = Math.min(body.length, room);
          for (let i = 0; i < bodyLength; i++) inputIds[at++] = toBigInt(body[i]);
        }
        for (const id of suffix) inputIds[at++] = toBigInt(id);
        attentionMask.fill(1n, offset, at);
        inputIds.fill(pad, at, offset + maxLength);
      }
      return { inputIds, attentionMask };
    },
  };
}

/** Writes the first `room` ids of a text's body into `into` from `at`; returns where it stopped. */
type HeadWriter = (text: string, room: number, into: BigInt64Array, at: number) => number;

/**
 * For BERT-style tokenizers (BertNormalizer or none, BertPreTokenizer, WordPiece without fuse_unk,
 * no added token with whitespace in it, and a post-processor that leaves the text's tokens as they
 * are without special tokens), every piece of the library's pipeline works within the words
 * between two spaces: the normalizer character by character (lowercasing, NFD and accent removal
 * never reach across a space), the pre-tokenizer splits at whitespace, WordPiece and added-token
 * matching stay inside a pre-token. A text's ids are then the ids of its space-separated chunks in
 * order, so a row needs only the chunks until `room` ids are there, and each chunk's ids are
 * remembered. A chunk of printable ASCII with no added token in it is split as BertPreTokenizer
 * does (runs of letters and digits, each other character alone) after the normalizer's only effect
 * on it, lowercasing; any other chunk goes through the library. What it writes equals the library's
 * encoding of the whole text cut to `room` ids. Null when the tokenizer is not of that kind, or when
 * it disagrees with the library on a probe text.
 */
function chunkedWriter(tokenizer: HfTokenizer, encodeBody: (text: string) => number[]): HeadWriter | null {
  const model = tokenizer.model;
  if (!model || !(model instanceof hf.WordPiece) || model.fuse_unk || model.unk_token_id === undefined) return null;
  if (tokenizer.normalizer && !(tokenizer.normalizer instanceof hf.BertNormalizer)) return null;
  if (!tokenizer.pre_tokenizer || !(tokenizer.pre_tokenizer instanceof hf.BertPreTokenizer)) return null;
  if (tokenizer.config.remove_space || tokenizer.config.do_lowercase_and_remove_accent) return null;
  const post = tokenizer.post_processor;
  if (post && !(post instanceof hf.BertProcessingPostProcessor)) {
    const single = post instanceof hf.TemplateProcessingPostProcessor ? post.config.single : null;
    if (!Array.isArray(single) || single.filter((item) => 'Sequence' in item).length !== 1 || !single.some((item) => item.Sequence?.id === 'A')) return null;
  }
  const added = [...tokenizer.added_tokens_map.keys()];
  if (added.some((content) => /\s/.test(content))) return null;

  const lowercase = Boolean(tokenizer.normalizer?.config.lowercase);
  const unkId = model.unk_token_id;
  const idOf = (token: string) => tokenizer.added_tokens_map.get(token)?.id ?? model.tokens_to_ids.get(token) ?? unkId;
  // Kept as bigints, ready for the int64 tensor.
  const cache = new Map<string, bigint[]>();
  const chunkIds = (chunk: string): bigint[] => {
    let ids = cache.get(chunk);
    if (ids) return ids;
    const normalized = lowercase ? chunk.toLowerCase() : chunk;
    const plain = ASCII_CHUNK.test(chunk) && !added.some((content) => chunk.includes(content) || normalized.includes(content));
    ids = (plain ? model.encode(normalized.match(ASCII_PRE_TOKENS)!).map(idOf) : encodeBody(chunk)).map(toBigInt);
    if (cache.size >= WORD_CACHE_LIMIT) cache.clear();
    cache.set(chunk, ids);
    return ids;
  };
  const writeHead: HeadWriter = (text, room, into, at) => {
    const stop = at + room;
    for (let start = 0; start <= text.length && at < stop; ) {
      let end = text.indexOf(' ', start);
      if (end < 0) end = text.length;
      if (end > start) {
        const ids = chunkIds(text.slice(start, end));
        for (let i = 0; i < ids.length && at < stop; i++) into[at++] = ids[i];
      }
      start = end + 1;
    }
    return at;
  };
  const probes = [
    'Axial CT (contrast-enhanced) shows a 4.5-cm hypodense LESION in segment VII; see Fig. 2B [arrow].',
    'Café-au-lait macules, naïve T-cells, 37 °C, ×400, 5 μm — “quoted” text\twith\ttabs and  double  spaces.',
    'ΟΔΟΣ Σ ΑΣ. 中文字 [MASK] [mask] a[SEP]b x\u0301 \u200b\ufeff end',
  ];
  for (const probe of probes) {
    const expected = encodeBody(probe);
    const written = new BigInt64Array(expected.length + 1);
    const end = writeHead(probe, written.length, written, 0);
    if (end !== expected.length || expected.some((id, i) => written[i] !== toBigInt(id))) return null;
  }
  cache.clear();
  return writeHead;
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
