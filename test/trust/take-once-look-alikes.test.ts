import { expect } from "chai";
import { KeyRing } from "../../src/crypto/key-ring";
import { InvalidArgumentError } from "../../src/errors";
import { SecretStore } from "../../src/secrets/take-once/secret-store";
import { TakeOnceSecrets } from "../../src/secrets/take-once/take-once-secrets";
import { FakeClock } from "../../src/testing/fake-clock";
import { closeDataSource, dbKinds, openTestDataSource } from "../support/databases";
import { LOOK_ALIKES, REJECTED_SPELLINGS } from "./look-alikes";
import { newKey, uniquePrefix } from "./trust-fixture";

/** Take-once secret ids and references are opaque too: a look-alike never names another secret's row. */
for (const kind of dbKinds()) {
  describe(`take-once secrets: look-alike ids and references on ${kind}`, () => {
    let secrets: TakeOnceSecrets;
    let store: SecretStore;
    let close: () => Promise<void>;
    before(async () => {
      const dataSource = await openTestDataSource(kind);
      secrets = new TakeOnceSecrets(dataSource, new KeyRing([newKey("k1")]), new FakeClock("2026-01-01T00:00:00.000Z"));
      store = new SecretStore(dataSource);
      close = () => closeDataSource(dataSource);
    });
    after(async () => close?.());

    const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

    it("an id in another case, or with an accent, a zero-width or a trailing space, is rejected and the secret stays", async () => {
      const { id } = await secrets.create("secret-value", { expiresInMs: 600_000, purpose: "workspace-start" });
      const spellings = [id.toUpperCase(), `${id.slice(0, 63)}\u00e9`, `${id.slice(0, 32)}\u200b${id.slice(32)}`, `${id} `, ` ${id}`];
      for (const spelling of spellings) {
        for (const call of [() => secrets.take(spelling), () => secrets.describe(spelling), () => secrets.delete(spelling), () => secrets.attachReference(spelling, "ws-1")]) {
          expect(await failure(call()), JSON.stringify(spelling)).to.be.instanceOf(InvalidArgumentError);
        }
      }
      expect(await secrets.take(id, { purpose: "workspace-start" })).to.equal("secret-value");
    });

    it("the scm_secret table itself finds no row for an id in another case or with a trailing space", async () => {
      const { id } = await secrets.create("secret-value", { expiresInMs: 600_000 });
      expect(await store.find(id.toUpperCase())).to.equal(undefined);
      expect(await store.find(`${id} `)).to.equal(undefined);
      expect(await store.delete(id.toUpperCase())).to.equal(false);
      expect(await store.setReference(`${id} `, "ws-1")).to.equal(false);
      expect((await store.find(id))?.reference).to.equal(undefined);
    });

    it("a purpose in another case does not take the secret", async () => {
      const { id } = await secrets.create("secret-value", { expiresInMs: 600_000, purpose: "workspace-start" });
      expect(await secrets.take(id, { purpose: "Workspace-Start" })).to.equal(undefined);
      expect(await secrets.take(id, { purpose: "workspace-start" })).to.equal("secret-value");
    });

    for (const pair of [...LOOK_ALIKES, ...REJECTED_SPELLINGS]) {
      it(`a reference differing by ${pair.name} is a different reference: refused, the first stays`, async () => {
        const [original, lookAlike] = pair.of(`ws-${uniquePrefix()}`);
        const { id } = await secrets.create("secret-value", { expiresInMs: 600_000 });
        expect(await secrets.attachReference(id, original)).to.equal(true);
        expect(await failure(secrets.attachReference(id, lookAlike))).to.be.instanceOf(InvalidArgumentError);
        expect((await secrets.describe(id))?.reference).to.equal(original);
        expect(await secrets.attachReference(id, original)).to.equal(true);
      });
    }
  });
}
