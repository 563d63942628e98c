import { expect } from "chai";
import fc from "fast-check";
import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { KeyRing } from "../src/crypto/key-ring";
import { DecryptionError } from "../src/errors";
import { TokenCrypto } from "../src/token-crypto";
import { LOOKALIKE_TRANSFORMS, type LookalikeTransform } from "./adversarial/support/arbitraries";

/** A key ring that counts its decrypts: what the cache saved is what it did not do. */
class CountingKeyRing extends KeyRing {
  decrypts = 0;
  override decrypt(ciphertext: string, context: string): string {
    this.decrypts++;
    return super.decrypt(ciphertext, context);
  }
}

const HOST = "bitbucket.example.com";
const ring = () => new CountingKeyRing([{ id: "k1", key: randomBytes(32).toString("base64") }]);

describe("TokenCrypto's cache of decrypted access tokens (decryptedTokenCacheSize)", () => {
  it("decrypts a stored access token once for repeated hand-outs, and hands out the same plaintext", () => {
    const keys = ring();
    const crypto = new TokenCrypto(keys, 10);
    const ciphertext = crypto.encrypt("access", "user-1", HOST, "access-token-1");
    for (let i = 0; i < 5; i++) expect(crypto.decrypt("access", "user-1", HOST, ciphertext)).to.equal("access-token-1");
    expect(keys.decrypts).to.equal(1);
  });

  it("never serves a cached plaintext for another user or host: a look-alike id still fails to decrypt", () => {
    const transforms = Object.keys(LOOKALIKE_TRANSFORMS) as LookalikeTransform[];
    fc.assert(
      fc.property(fc.stringMatching(/^[a-zA-Z][a-zA-Z0-9._@-]{2,16}$/), fc.constantFrom(...transforms), fc.boolean(), (userId, transform, otherHost) => {
        const crypto = new TokenCrypto(ring(), 10);
        const ciphertext = crypto.encrypt("access", userId, HOST, "the-owner's-token");
        expect(crypto.decrypt("access", userId, HOST, ciphertext)).to.equal("the-owner's-token"); // now cached
        const other = LOOKALIKE_TRANSFORMS[transform](userId);
        const [asUser, asHost] = otherHost ? [userId, `${HOST}.`] : [other, HOST];
        if (asUser === userId && asHost === HOST) return; // the transform changed nothing
        expect(() => crypto.decrypt("access", asUser, asHost, ciphertext), `${transform}: ${JSON.stringify(asUser)} @ ${asHost}`).to.throw(DecryptionError);
      }),
      { numRuns: 300 },
    );
  });

  it("keeps no refresh token: each refresh decrypts again", () => {
    const keys = ring();
    const crypto = new TokenCrypto(keys, 10);
    const ciphertext = crypto.encrypt("refresh", "user-1", HOST, "refresh-token-1");
    for (let i = 0; i < 3; i++) expect(crypto.decrypt("refresh", "user-1", HOST, ciphertext)).to.equal("refresh-token-1");
    expect(keys.decrypts).to.equal(3);
  });

  it("a token's access ciphertext read as the refresh column (or the other way round) still fails", () => {
    const crypto = new TokenCrypto(ring(), 10);
    const access = crypto.encrypt("access", "user-1", HOST, "access-token-1");
    crypto.decrypt("access", "user-1", HOST, access);
    expect(() => crypto.decrypt("refresh", "user-1", HOST, access)).to.throw(DecryptionError);
  });

  it("holds at most its capacity, dropping the oldest first", () => {
    const keys = ring();
    const crypto = new TokenCrypto(keys, 3);
    const ciphertexts = [0, 1, 2, 3].map((i) => crypto.encrypt("access", `user-${i}`, HOST, `token-${i}`));
    ciphertexts.forEach((c, i) => crypto.decrypt("access", `user-${i}`, HOST, c)); // 4 decrypts; user-0 dropped
    expect(keys.decrypts).to.equal(4);
    for (const i of [1, 2, 3]) crypto.decrypt("access", `user-${i}`, HOST, ciphertexts[i]);
    expect(keys.decrypts, "users 1-3 are still kept").to.equal(4);
    expect(crypto.decrypt("access", "user-0", HOST, ciphertexts[0])).to.equal("token-0");
    expect(keys.decrypts, "user 0 was dropped and is decrypted again").to.equal(5);
  });

  it("with size 0 keeps nothing and decrypts every time", () => {
    const keys = ring();
    const crypto = new TokenCrypto(keys, 0);
    const ciphertext = crypto.encrypt("access", "user-1", HOST, "access-token-1");
    for (let i = 0; i < 3; i++) crypto.decrypt("access", "user-1", HOST, ciphertext);
    expect(keys.decrypts).to.equal(3);
  });

  it("a new ciphertext (a refreshed or replaced token) is never answered from the cache", () => {
    const keys = ring();
    const crypto = new TokenCrypto(keys, 10);
    const first = crypto.encrypt("access", "user-1", HOST, "old-token");
    crypto.decrypt("access", "user-1", HOST, first);
    const second = crypto.encrypt("access", "user-1", HOST, "new-token");
    expect(crypto.decrypt("access", "user-1", HOST, second)).to.equal("new-token");
    expect(keys.decrypts).to.equal(2);
  });

  it("a failed decrypt is not remembered: it fails again", () => {
    const keys = ring();
    const crypto = new TokenCrypto(keys, 10);
    const tampered = crypto.encrypt("access", "user-1", HOST, "token").replace(/:[^:]+$/, `:${Buffer.from("garbage").toString("base64url")}`);
    expect(() => crypto.decrypt("access", "user-1", HOST, tampered)).to.throw(DecryptionError);
    expect(() => crypto.decrypt("access", "user-1", HOST, tampered)).to.throw(DecryptionError);
    expect(keys.decrypts).to.equal(2);
  });

  it("its plaintexts do not show when the TokenCrypto is inspected, serialised or spread", () => {
    const crypto = new TokenCrypto(ring(), 10);
    const ciphertext = crypto.encrypt("access", "user-1", HOST, "visible-if-leaked-7f3a");
    crypto.decrypt("access", "user-1", HOST, ciphertext);
    for (const shown of [inspect(crypto, { depth: Infinity, showHidden: true }), JSON.stringify(crypto), inspect({ ...crypto }, { depth: Infinity })]) {
      expect(shown).to.not.contain("visible-if-leaked-7f3a");
    }
  });
});
