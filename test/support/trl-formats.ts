/**
 * TRL's documented dataset formats, written out here as the reference the exports are checked
 * against (huggingface/trl, docs/source/dataset_formats.md), independently of the export code.
 *
 * Conversational preference type, explicit prompt:
 *
 *     preference_example = {"prompt": [{"role": "user", "content": "What color is the sky?"}],
 *                           "chosen": [{"role": "assistant", "content": "It is blue."}],
 *                           "rejected": [{"role": "assistant", "content": "It is green."}]}
 *
 * "Some datasets may not include the "prompt" column, in which case the prompt is implicit and
 * directly included in the "chosen" and "rejected" completions."
 *
 * Vision datasets: "A conversational vision dataset differs from a standard conversational dataset
 * in two key ways: 1. The dataset must contain the key `images` with the image data. 2. The
 * "content" field in messages must be a list of dictionaries, where each dictionary specifies the
 * type of data: "image" or "text"."
 *
 *     # Vision dataset:
 *     "content": [
 *         {"type": "image"},
 *         {"type": "text", "text": "What color is the sky in the image?"}
 *     ]
 */

/** The doc's vision content example, as it is written there. */
export const TRL_DOC_VISION_CONTENT = [{ type: 'image' }, { type: 'text', text: 'What color is the sky in the image?' }];

type Json = Record<string, unknown>;

function checkPart(part: unknown, where: string): 'image' | 'text' {
  if (typeof part !== 'object' || part === null || Array.isArray(part)) throw new Error(`${where}: a content part is an object`);
  const p = part as Json;
  if (p.type === 'image') {
    if (Object.keys(p).join() !== 'type') throw new Error(`${where}: an image part is {"type": "image"} alone`);
    return 'image';
  }
  if (p.type === 'text') {
    if (Object.keys(p).sort().join() !== 'text,type' || typeof p.text !== 'string') throw new Error(`${where}: a text part is {"type": "text", "text": string}`);
    return 'text';
  }
  throw new Error(`${where}: a part's type is "image" or "text", not ${JSON.stringify(p.type)}`);
}

/** Image parts in a list of vision messages, after checking each message's shape. */
function checkMessages(messages: unknown, column: string): { roles: string[]; images: number } {
  if (!Array.isArray(messages)) throw new Error(`${column}: a list of messages`);
  let images = 0;
  const roles = messages.map((m, i) => {
    const where = `${column}[${i}]`;
    if (typeof m !== 'object' || m === null) throw new Error(`${where}: a message is an object`);
    const { role, content } = m as Json;
    if (role !== 'user' && role !== 'assistant' && role !== 'system') throw new Error(`${where}: role is user, assistant or system`);
    if (!Array.isArray(content) || content.length === 0) throw new Error(`${where}: content is a non-empty list of typed parts`);
    for (const part of content) if (checkPart(part, where) === 'image') images++;
    return role;
  });
  return { roles, images };
}

/**
 * Throws, saying what is wrong, unless `row` is a conversational vision preference row as TRL
 * documents it: `images` a list, `prompt` (possibly empty: implicit prompt), `chosen` and
 * `rejected` lists of messages whose content is typed parts, the prompt ending on the user's turn,
 * and as many image parts as images in what opens the conversation.
 */
export function assertTrlVisionPreferenceRow(row: unknown): void {
  if (typeof row !== 'object' || row === null) throw new Error('a row is an object');
  const r = row as Json;
  if (!Array.isArray(r.images) || r.images.some((i) => typeof i !== 'string')) throw new Error('images: a list (here: paths inside the image archive)');
  const prompt = checkMessages(r.prompt, 'prompt');
  const chosen = checkMessages(r.chosen, 'chosen');
  const rejected = checkMessages(r.rejected, 'rejected');
  if (!chosen.roles.length || !rejected.roles.length) throw new Error('chosen and rejected hold at least one message');
  if (prompt.roles.length) {
    if (prompt.roles[prompt.roles.length - 1] !== 'user') throw new Error('an explicit prompt ends on the user turn');
    if (chosen.roles[0] !== 'assistant' || rejected.roles[0] !== 'assistant') throw new Error('with an explicit prompt, chosen and rejected start with the assistant');
    if (prompt.images !== r.images.length || chosen.images || rejected.images) throw new Error('one image part in the prompt per image');
  } else if (chosen.images !== r.images.length || rejected.images !== r.images.length) {
    throw new Error('implicit prompt: chosen and rejected each hold one image part per image');
  }
  const texts = JSON.stringify([r.prompt, r.chosen, r.rejected]);
  if (texts.includes('<image>')) throw new Error('no <image> placeholder inside text: images are typed parts');
}
