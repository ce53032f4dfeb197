/**
 * The bytes of a batch of export lines, written into one growing buffer. Joining a batch's lines
 * into one string and encoding it (`Buffer.from(lines.join(''))`) cost the LLaVA export more than all
 * its other work together (the profile's top frame, issue 14; about 5x slower than this in a
 * micro-benchmark of 200 lines of 3 KB): each line is encoded straight into place instead, and
 * what repeats (a TRL item's messages) is encoded once and copied.
 */
export class ExportBytes {
  private buffer: Buffer;
  private length = 0;

  constructor(private readonly initialBytes = 256 * 1024) {
    this.buffer = Buffer.allocUnsafe(initialBytes);
  }

  get byteLength(): number {
    return this.length;
  }

  private reserve(bytes: number): void {
    const needed = this.length + bytes;
    if (needed <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(needed, this.buffer.length * 2));
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }

  /** UTF-8; a UTF-16 code unit takes at most 3 bytes, so no measuring pass is needed. */
  string(text: string): this {
    this.reserve(text.length * 3);
    this.length += this.buffer.write(text, this.length, 'utf8');
    return this;
  }

  bytes(bytes: Buffer): this {
    this.reserve(bytes.length);
    this.length += bytes.copy(this.buffer, this.length);
    return this;
  }

  /** The bytes written since the last take; the writer starts again on a fresh buffer. */
  take(): Buffer {
    const out = this.buffer.subarray(0, this.length);
    this.buffer = Buffer.allocUnsafe(Math.max(this.initialBytes, Math.min(this.buffer.length, 4 * 1024 * 1024)));
    this.length = 0;
    return out;
  }
}
