/**
 * The plaintexts of the most recently decrypted access tokens, at most `capacity` of them (the oldest
 * insertion goes first), each answered only for the decryption's full input: the ciphertext and the
 * AAD context (kind, userId, host) it decrypted under.
 *
 * Why: a repeated hand-out of one stored token decrypts the same ciphertext again and again, and an
 * AES-GCM decrypt in Node costs far more between database round trips than in a tight loop (3 µs;
 * presumably OpenSSL's per-call cipher set-up running with cold caches): ~25 µs of a ~90 µs
 * write-free hand-out in this project's measurements (README, "Benchmarks"). A ciphertext, under
 * one context, decrypts to exactly one plaintext (the key ring never changes in a running service),
 * so the cache can never return a different token than the decryption would; a ciphertext presented
 * under another user or host is not answered, so a misrouted row still goes to the decryption, and
 * fails. A refreshed token has a new ciphertext: the old entry is never asked for again and ages out.
 *
 * The entries are in a private field: util.inspect, JSON.stringify or a spread of the service never
 * reach them. They hold what hand-outs return to callers anyway, in the process that holds the keys.
 */
export class RecentPlaintexts {
  /** By ciphertext (unique: a random IV each), with the context it decrypted under. */
  readonly #entries = new Map<string, { context: string; plaintext: string }>();
  /**
   * The keys in insertion order, as a ring: the slot to fill next holds the oldest key. Not the Map's
   * own order (`keys().next()`): a Map whose oldest entries are deleted one by one keeps their holes
   * at its front until it rehashes, and every `keys().next()` walks them — measured 8 µs per insert
   * at 10 000 entries, against 0.5 µs with the ring.
   */
  readonly #order: Array<string | undefined>;
  #next = 0;

  /** `capacity` 0 keeps nothing (every call decrypts). */
  constructor(private readonly capacity: number) {
    this.#order = new Array<string | undefined>(capacity);
  }

  /** The plaintext `ciphertext` decrypted to under exactly this `context`; undefined for any other context. */
  get(context: string, ciphertext: string): string | undefined {
    const entry = this.#entries.get(ciphertext);
    return entry !== undefined && entry.context === context ? entry.plaintext : undefined;
  }

  remember(context: string, ciphertext: string, plaintext: string): void {
    // A ciphertext decrypts under one context only (AES-GCM checks the context): one entry each.
    if (this.capacity === 0 || this.#entries.has(ciphertext)) return;
    const oldest = this.#order[this.#next];
    if (oldest !== undefined) this.#entries.delete(oldest);
    this.#order[this.#next] = ciphertext;
    this.#next = (this.#next + 1) % this.capacity;
    this.#entries.set(ciphertext, { context, plaintext });
  }
}
