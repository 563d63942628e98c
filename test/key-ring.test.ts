import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { KeyRing } from "../src/crypto/key-ring";
import { ConfigurationError, DecryptionError } from "../src/errors";

const key = () => randomBytes(32).toString("base64");

describe("KeyRing (AES-256-GCM with key ids)", () => {
  it("round-trips and never produces the same ciphertext twice", () => {
    const ring = new KeyRing([{ id: "k1", key: key() }]);
    const a = ring.encrypt("secret-token", "ctx");
    const b = ring.encrypt("secret-token", "ctx");
    expect(a).to.not.equal(b);
    expect(a).to.match(/^v1:k1:/).and.not.contain("secret-token");
    expect(ring.decrypt(a, "ctx")).to.equal("secret-token");
  });

  it("rotates: a new primary encrypts, the old key still decrypts", () => {
    const k1 = key();
    const old = new KeyRing([{ id: "k1", key: k1 }]).encrypt("t", "ctx");
    const ring = new KeyRing([{ id: "k1", key: k1 }, { id: "k2", key: key(), primary: true }]);
    expect(ring.primaryId).to.equal("k2");
    expect(ring.decrypt(old, "ctx")).to.equal("t");
    expect(KeyRing.keyIdOf(ring.encrypt("t", "ctx"))).to.equal("k2");
  });

  it("fails clearly for a missing key, a wrong key, a moved ciphertext and a tampered one", () => {
    const ring = new KeyRing([{ id: "k1", key: key() }]);
    const c = ring.encrypt("t", "row-a");
    const missing = new KeyRing([{ id: "other", key: key() }]);
    expect(() => missing.decrypt(c, "row-a")).to.throw(DecryptionError, /key "k1", which is not in encryptionKeys/);
    expect(() => new KeyRing([{ id: "k1", key: key() }]).decrypt(c, "row-a")).to.throw(DecryptionError, /failed authentication/);
    expect(() => ring.decrypt(c, "row-b")).to.throw(DecryptionError, /moved/);
    const parts = c.split(":");
    parts[4] = Buffer.from("garbage").toString("base64url");
    expect(() => ring.decrypt(parts.join(":"), "row-a")).to.throw(DecryptionError);
    expect(() => ring.decrypt("plain-text-token", "row-a")).to.throw(DecryptionError, /v1 ciphertext format/);
  });

  it("rejects bad key rings at start-up with instructions", () => {
    expect(() => new KeyRing([])).to.throw(ConfigurationError, /openssl rand -base64 32/);
    expect(() => new KeyRing([{ id: "k", key: Buffer.alloc(16).toString("base64") }])).to.throw(ConfigurationError, /exactly 32 bytes \(got 16\)/);
    expect(() => new KeyRing([{ id: "a:b", key: key() }])).to.throw(ConfigurationError, /id/);
    expect(() => new KeyRing([{ id: "k", key: key() }, { id: "k", key: key() }])).to.throw(ConfigurationError, /twice/);
    expect(() => new KeyRing([{ id: "a", key: key(), primary: true }, { id: "b", key: key(), primary: true }])).to.throw(ConfigurationError, /more than one/);
  });

  it("does not show key material in JSON or util.inspect", () => {
    const material = key();
    const ring = new KeyRing([{ id: "k1", key: material }]);
    const raw = Buffer.from(material, "base64");
    expect(JSON.stringify(ring)).to.not.contain(material);
    expect(inspect(ring, { depth: 5 })).to.not.contain(material).and.not.contain(raw.toString("hex").slice(0, 8));
  });
});
