import { rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import type { DataSource } from "typeorm";
import type { EncryptionKey } from "../../src/crypto/key-ring";
import { KeyRing } from "../../src/crypto/key-ring";
import { dbKinds, rawQuery, type DbKind } from "../support/databases";
import { Collector, HOST, cli, dropCliDatabases, expectNoSecrets, migratedDatabaseUrl, newKey, serviceWithKeys, withDataSource } from "./cli-harness";

interface StoredUser {
  userId: string;
  value: string;
  refreshToken?: string;
}

/** Stores one token per user with `keys` (the first/primary encrypts); returns what was stored. */
async function storeUsers(url: string, keys: EncryptionKey[], prefix: string, count: number, withRefreshToken = true): Promise<StoredUser[]> {
  const service = await serviceWithKeys(url, keys);
  try {
    const users: StoredUser[] = [];
    for (let i = 0; i < count; i++) {
      const user: StoredUser = { userId: `${prefix}-${String(i).padStart(2, "0")}`, value: `access-${prefix}-${i}-${Math.random().toString(36).slice(2)}` };
      if (withRefreshToken) user.refreshToken = `refresh-${prefix}-${i}-${Math.random().toString(36).slice(2)}`;
      await service.storeToken(user.userId, HOST, { value: user.value, refreshToken: user.refreshToken, expiryDate: new Date(Date.now() + 24 * 3_600_000), scopes: ["repo"] });
      users.push(user);
    }
    return users;
  } finally {
    await service.close();
  }
}

/** Hands out every user's token through a service with exactly `keys`; fails on any token that does not decrypt or differs. */
async function expectReadable(url: string, keys: EncryptionKey[], users: StoredUser[]): Promise<void> {
  const service = await serviceWithKeys(url, keys);
  try {
    for (const user of users) {
      const token = await service.getTokenForHost(user.userId, HOST, { lifetimeMinutes: 1 });
      expect(token?.value, `${user.userId} with keys ${keys.map((k) => k.id).join(",")}`).to.equal(user.value);
    }
  } finally {
    await service.close();
  }
}

/** Key id of every stored ciphertext, access and refresh, by user. */
async function keyIdsByUser(url: string): Promise<Record<string, string[]>> {
  return withDataSource(url, async (ds) => {
    const rows = (await rawQuery(ds, "SELECT userId, accessToken, refreshToken FROM scm_token_entry ORDER BY userId")) as { userId: string; accessToken: string; refreshToken: string | null }[];
    return Object.fromEntries(rows.map((r) => [r.userId, [r.accessToken, r.refreshToken].filter((c): c is string => c !== null).map((c) => KeyRing.keyIdOf(c) ?? "?")]));
  });
}

function countUnder(ids: Record<string, string[]>, keyId: string): number {
  return Object.values(ids).filter((list) => list.every((id) => id === keyId)).length;
}

const env = (keys: EncryptionKey[]) => ({ SCM_TOKEN_KEYS: JSON.stringify(keys) });

function secretsOf(keys: EncryptionKey[], users: StoredUser[]): string[] {
  return [...keys.map((k) => k.key), ...users.flatMap((u) => [u.value, u.refreshToken ?? u.value])];
}

async function rotateOn(kind: DbKind) {
  const url = await migratedDatabaseUrl(kind);
  const oldKey = newKey("2025-08");
  const newPrimary = newKey("2026-02", true);
  return { url, oldKey, newPrimary, ring: [newPrimary, oldKey] };
}

for (const kind of dbKinds()) {
  describe(`scm-token-service rotate-keys on ${kind}`, () => {
    after(dropCliDatabases);

    it("interrupted half-way (--max-rows) and rerun: every entry stays readable, and at the end every ciphertext is under the new key", async () => {
      const { url, oldKey, newPrimary, ring } = await rotateOn(kind);
      const users = [...(await storeUsers(url, [oldKey], "user", 10)), ...(await storeUsers(url, [oldKey], "norefresh", 2, false))];

      const dry = await cli(["rotate-keys", "--database-url", url, "--dry-run"], { env: env(ring) });
      expect(dry.code).to.equal(0);
      expect(dry.stdout).to.include('12 token entries are not under the primary key "2026-02" (dry run: nothing changed).');
      expect(countUnder(await keyIdsByUser(url), "2025-08")).to.equal(12);

      const first = await cli(["rotate-keys", "--database-url", url, "--batch-size", "3", "--max-rows", "5"], { env: env(ring) });
      expect(first.code, first.stderr).to.equal(0);
      expect(first.stdout).to.include('Rotated 5 token entries to key "2026-02" in 2 batch(es)').and.include("skipped (changed concurrently) 0; failed to decrypt 0.");
      expect(first.stdout).to.include("Stopped after --max-rows 5: run again to continue.");
      const halfway = await keyIdsByUser(url);
      expect(countUnder(halfway, "2026-02"), "rotated entries, access and refresh ciphertexts").to.equal(5);
      expect(countUnder(halfway, "2025-08"), "entries not reached yet").to.equal(7);
      // Half-way, a service with the new primary and the old key reads every entry.
      await expectReadable(url, [newPrimary, oldKey], users);

      const second = await cli(["rotate-keys", "--database-url", url, "--batch-size", "3"], { env: env(ring) });
      expect(second.code, second.stderr).to.equal(0);
      expect(second.stdout).to.include('Rotated 7 token entries to key "2026-02"').and.include('Done: every token entry is under "2026-02".');
      const done = await keyIdsByUser(url);
      expect(Object.keys(done)).to.have.length(12);
      expect(countUnder(done, "2026-02"), JSON.stringify(done)).to.equal(12);
      await expectReadable(url, [newPrimary, { ...oldKey, primary: false }], users);
      await expectReadable(url, [newPrimary], users); // the old key is no longer needed for any entry

      const third = await cli(["rotate-keys", "--database-url", url], { env: env(ring) });
      expect(third.stdout).to.include("Rotated 0 token entries").and.include("Done");
      expectNoSecrets(dry.stdout + dry.stderr + first.stdout + first.stderr + second.stdout + second.stderr + third.stdout + third.stderr, secretsOf(ring, users));
    });

    it("an injected abort after 4 rows stops cleanly; the rerun finishes", async () => {
      const { url, oldKey, newPrimary, ring } = await rotateOn(kind);
      const users = await storeUsers(url, [oldKey], "abort", 9);
      const controller = new AbortController();
      let written = 0;
      const first = await cli(["rotate-keys", "--database-url", url, "--batch-size", "2"], {
        env: env(ring),
        signal: controller.signal,
        hooks: { rotateKeys: { beforeWrite: async () => void (++written === 4 && controller.abort()) } },
      });
      expect(first.code).to.equal(0);
      expect(first.stdout).to.include("Rotated 4 token entries").and.include("Interrupted: run again to continue.");
      await expectReadable(url, [newPrimary, oldKey], users);
      const second = await cli(["rotate-keys", "--database-url", url], { env: env(ring) });
      expect(second.stdout).to.include("Rotated 5 token entries").and.include("Done");
      await expectReadable(url, [newPrimary], users);
    });

    it("never overwrites a token that changed after it was read: the row is skipped, and the next run rotates the new token", async () => {
      const { url, oldKey, newPrimary, ring } = await rotateOn(kind);
      const users = await storeUsers(url, [oldKey], "race", 4);
      const replaced = { value: "access-replaced-by-a-concurrent-refresh", refreshToken: "refresh-replaced-by-a-concurrent-refresh" };
      // A replica still running with the old key as primary stores a new token for race-01 while rotate-keys holds its old ciphertexts.
      const concurrentStore = async (row: { userId: string }, dataSource: DataSource) => {
        if (row.userId !== "race-01") return;
        const replica = await serviceWithKeys(dataSource, [oldKey]);
        await replica.storeToken(row.userId, HOST, { ...replaced, expiryDate: new Date(Date.now() + 3_600_000) });
      };
      const first = await cli(["rotate-keys", "--database-url", url], { env: env(ring), hooks: { rotateKeys: { beforeWrite: concurrentStore } } });
      expect(first.code).to.equal(0);
      expect(first.stdout).to.include("Rotated 3 token entries").and.include("skipped (changed concurrently) 1").and.include("Run again to rotate the skipped entries.");
      users[1] = { userId: "race-01", ...replaced };
      expect((await keyIdsByUser(url))["race-01"]).to.deep.equal(["2025-08", "2025-08"]);
      await expectReadable(url, [newPrimary, oldKey], users);

      const second = await cli(["rotate-keys", "--database-url", url], { env: env(ring) });
      expect(second.stdout).to.include("Rotated 1 token entry to key").and.include("Done");
      await expectReadable(url, [newPrimary], users);
    });

    it("reports rows it cannot decrypt with the key id they need, leaves them untouched, rotates the rest and exits 1", async () => {
      const { url, oldKey, newPrimary, ring } = await rotateOn(kind);
      const lost = newKey("lost-2024");
      const impostor = { id: "2025-08", key: newKey("x").key }; // right id, wrong key material
      const readable = await storeUsers(url, [oldKey], "ok", 3);
      await storeUsers(url, [lost], "lost", 2);
      const keysFile = join(tmpdir(), `scm-token-keys-${process.pid}-${kind}.json`);
      writeFileSync(keysFile, JSON.stringify(ring));
      try {
        const run = await cli(["rotate-keys", "--database-url", url, "--keys-file", keysFile]);
        expect(run.code).to.equal(1);
        expect(run.stdout).to.include("Rotated 3 token entries").and.include("failed to decrypt 2.");
        expect(run.stdout).to.include('Could not decrypt: 2 need key "lost-2024" (not in the ring: add it). Those rows were left unchanged.');
        expect(countUnder(await keyIdsByUser(url), "lost-2024")).to.equal(2);
        await expectReadable(url, [newPrimary], readable);

        // The same ring, but the old key's material is wrong: authentication fails, the id is in the ring.
        await storeUsers(url, [oldKey], "more", 1);
        const wrong = await cli(["rotate-keys", "--database-url", url], { env: env([newPrimary, impostor, lost]) });
        expect(wrong.code).to.equal(1);
        expect(wrong.stdout).to.include("Rotated 2 token entries").and.include('1 need key "2025-08" (in the ring, but authentication failed');
        expectNoSecrets(run.stdout + run.stderr + wrong.stdout + wrong.stderr, [...secretsOf(ring, readable), lost.key, impostor.key]);
      } finally {
        rmSync(keysFile, { force: true });
      }
    });

    it("--dry-run with a ring that lacks a key: decrypts every row, names the missing key and the row count, exits 1 as the real run does, changes nothing", async () => {
      const { url, oldKey, newPrimary } = await rotateOn(kind);
      const lost = newKey("lost-2024");
      await storeUsers(url, [oldKey], "ok", 3);
      await storeUsers(url, [lost], "lost", 2);
      const ring = [newPrimary, oldKey]; // "lost-2024" is not in it
      const before = await keyIdsByUser(url);

      const dry = await cli(["rotate-keys", "--database-url", url, "--dry-run", "--batch-size", "2"], { env: env(ring) });
      const real = await cli(["rotate-keys", "--database-url", url], { env: env(ring) });
      expect(dry.code, dry.stdout + dry.stderr).to.equal(real.code);
      expect(dry.code).to.equal(1);
      expect(dry.stdout).to.include('5 token entries are not under the primary key "2026-02" (dry run: nothing changed).');
      expect(dry.stdout).to.include('Could not decrypt: 2 need key "lost-2024" (not in the ring: add it). A real run would rotate 3, leave those 2 unchanged and exit 1.');
      expect(real.stdout).to.include('Could not decrypt: 2 need key "lost-2024" (not in the ring: add it).');
      // The dry run wrote nothing: the rows the real run rotated were still under the old key before it.
      expect(countUnder(before, "2025-08")).to.equal(3);
      expectNoSecrets(dry.stdout + dry.stderr, [...secretsOf(ring, []), lost.key]);
    });

    it("--dry-run with a complete ring: exits 0 and says every entry decrypts; nothing changes", async () => {
      const { url, oldKey, ring } = await rotateOn(kind);
      await storeUsers(url, [oldKey], "all", 2);
      const dry = await cli(["rotate-keys", "--database-url", url, "--dry-run"], { env: env(ring) });
      expect(dry.code, dry.stderr).to.equal(0);
      expect(dry.stdout).to.include("Every one of them decrypts with this key ring: a real run would rotate 2.");
      expect(countUnder(await keyIdsByUser(url), "2025-08")).to.equal(2);
    });

    it("draws a progress bar on a terminal's stderr and keeps stdout to the summary", async () => {
      const { url, oldKey, ring } = await rotateOn(kind);
      await storeUsers(url, [oldKey], "bar", 3);
      const stderr = new Collector(true);
      const run = await cli(["rotate-keys", "--database-url", url], { env: env(ring), stderr });
      expect(run.code).to.equal(0);
      expect(stderr.text).to.include('rotate-keys → "2026-02"').and.include("3/3 entries | rotated 3, skipped 0, failed 0");
      expect(run.stdout).to.not.match(/\x1b/);
    });

    it("points out live take-once secrets under the old key (they are not re-encrypted) and until when the old key is needed", async () => {
      const { url, oldKey, ring } = await rotateOn(kind);
      const expiresAt = new Date(Date.now() + 10 * 60_000);
      await withDataSource(url, (ds) =>
        rawQuery(ds, "INSERT INTO scm_secret (id, ciphertext, purpose, state, reference, expiresAt, createdAt) VALUES (?, ?, NULL, 'created', NULL, ?, ?)", [
          "secret-1",
          `v1:${oldKey.id}:iv:tag:data`,
          expiresAt.toISOString().replace("T", " ").replace("Z", ""),
          new Date().toISOString().replace("T", " ").replace("Z", ""),
        ]),
      );
      const run = await cli(["rotate-keys", "--database-url", url], { env: env(ring) });
      expect(run.code).to.equal(0);
      expect(run.stdout).to.include(`Note: 1 live take-once secret(s) are under other keys; they are not re-encrypted (they expire by ${expiresAt.toISOString()}): keep the old keys in the ring until then.`);
    });
  });
}
