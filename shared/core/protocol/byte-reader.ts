// Reads exact byte counts from an async stream of byte pieces, holding at most one piece plus
// the bytes asked for. Used by the container and record payload readers.

export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

const EMPTY = new Uint8Array(0);

export class ByteReader {
  readonly #iterator: AsyncIterator<unknown> | Iterator<unknown>;
  readonly #notBytes: () => Error;
  #piece: Uint8Array = EMPTY;
  #offset = 0;
  #done = false;
  /** Bytes consumed so far. */
  position = 0;

  constructor(source: ByteSource, notBytes: () => Error) {
    const asyncIterable = (source as AsyncIterable<unknown>)[Symbol.asyncIterator];
    this.#iterator =
      typeof asyncIterable === 'function'
        ? (source as AsyncIterable<unknown>)[Symbol.asyncIterator]()
        : (source as Iterable<unknown>)[Symbol.iterator]();
    this.#notBytes = notBytes;
  }

  /** Loads the next non-empty piece; false at the end of the source. */
  async #fill(): Promise<boolean> {
    while (this.#offset >= this.#piece.length) {
      if (this.#done) return false;
      const next = await this.#iterator.next();
      if (next.done) {
        this.#done = true;
        this.#piece = EMPTY;
        this.#offset = 0;
        return false;
      }
      if (!(next.value instanceof Uint8Array)) throw this.#notBytes();
      this.#piece = next.value;
      this.#offset = 0;
    }
    return true;
  }

  /**
   * Exactly `n` bytes, or fewer only if the source ended first (the caller decides what a
   * short read means). The result is a view when it lies in one piece, else a fresh copy.
   */
  async read(n: number): Promise<Uint8Array> {
    if (n === 0) return EMPTY;
    if (!(await this.#fill())) return EMPTY;
    const available = this.#piece.length - this.#offset;
    if (available >= n) {
      const view = this.#piece.subarray(this.#offset, this.#offset + n);
      this.#offset += n;
      this.position += n;
      return view;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n && (await this.#fill())) {
      const take = Math.min(n - filled, this.#piece.length - this.#offset);
      out.set(this.#piece.subarray(this.#offset, this.#offset + take), filled);
      this.#offset += take;
      filled += take;
      this.position += take;
    }
    return filled === n ? out : out.subarray(0, filled);
  }

  /** True if the source has no more bytes. */
  async atEnd(): Promise<boolean> {
    return !(await this.#fill());
  }

  /** Yields the rest of the source as it comes (views of the source's pieces). */
  async *rest(): AsyncGenerator<Uint8Array, void, undefined> {
    while (await this.#fill()) {
      const view = this.#piece.subarray(this.#offset);
      this.#offset = this.#piece.length;
      this.position += view.length;
      yield view;
    }
  }

  /** Stops the source early (closes a file or a network stream). */
  async close(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    await this.#iterator.return?.();
  }
}
