/**
 * The plaintexts of the most recently decrypted access tokens, keyed by the decryption's full input
 * (the AAD context — kind, userId, host — and the ciphertext), at most `capacity` of them; the oldest
 * insertion goes first.
 *
 * Why: a repeated hand-out of one stored token decrypts the same ciphertext again and again, and an
 * AES-GCM decrypt in Node costs far more between database round trips than in a tight loop (OpenSSL's
 * per-call cipher set-up runs with cold caches): ~25 µs of a ~90 µs write-free hand-out in this
 * project's measurements (README, "Benchmarks"). A ciphertext, under one context, decrypts to exactly one plaintext
 * (the key ring never changes in a running service), so the cache can never return a different token
 * than the decryption would; a ciphertext presented under another user or host is another key, so a
 * misrouted row still fails to decrypt. A refreshed token has a new ciphertext: the old entry is never
 * asked for again and ages out.
 *
 * The entries are in a private field: util.inspect, JSON.stringify or a spread of the service never
 * reach them. They hold what hand-outs return to callers anyway, in the process that holds the keys.
 */
export class RecentPlaintexts {
  readonly #entries = new Map<string, string>();

  /** `capacity` 0 keeps nothing (every call decrypts). */
  constructor(private readonly capacity: number) {}

  get(context: string, ciphertext: string): string | undefined {
    return this.capacity === 0 ? undefined : this.#entries.get(key(context, ciphertext));
  }

  remember(context: string, ciphertext: string, plaintext: string): void {
    if (this.capacity === 0) return;
    this.#entries.set(key(context, ciphertext), plaintext);
    if (this.#entries.size > this.capacity) this.#entries.delete(this.#entries.keys().next().value!);
  }

  get size(): number {
    return this.#entries.size;
  }
}

/** The context is JSON (it cannot contain a raw line break), so the first line break ends it. */
function key(context: string, ciphertext: string): string {
  return `${context}\n${ciphertext}`;
}
