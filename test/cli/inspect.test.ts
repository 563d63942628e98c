import { expect } from "chai";
import type { EntryMetadata } from "../../src/cli/commands/inspect";
import { TokenStore } from "../../src/storage/token-store";
import { dbKinds } from "../support/databases";
import { HOST, cli, dropCliDatabases, expectNoSecrets, migratedDatabaseUrl, newKey, serviceWithKeys, withDataSource } from "./cli-harness";

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

for (const kind of dbKinds()) {
  describe(`scm-token-service inspect on ${kind}`, () => {
    after(dropCliDatabases);
    const key = newKey("2026-02");
    const secrets = { value: "access-inspect-SECRET-1", refreshToken: "refresh-inspect-SECRET-1" };
    let url: string;

    before(async () => {
      url = await migratedDatabaseUrl(kind);
      const service = await serviceWithKeys(url, [key]);
      try {
        await service.storeToken("alice", HOST, { ...secrets, expiryDate: new Date(Date.now() + 3_600_000), scopes: ["repo:read", "repo:write"], username: "x-token-auth" });
        await service.getTokenForHost("alice", HOST, { lifetimeMinutes: 10 }); // pins it for 10 minutes + the write-free slack (50 %): 15
        await service.storeToken("bob", HOST, { value: "access-bob-SECRET", refreshToken: "refresh-bob-SECRET", expiryDate: new Date(Date.now() + 3_600_000) });
        await service.storeToken("dave", HOST, { value: "access-dave-SECRET", expiryDate: new Date(Date.now() + 3_600_000) });
        await service.storeToken("erin", HOST, { value: "access-erin-SECRET", refreshToken: "refresh-erin-SECRET", expiryDate: new Date(Date.now() + 3_600_000) });
        await service.getTokenForHost("erin", HOST, { lifetimeMinutes: 7, releasable: true });
        const released = await service.getTokenForHost("erin", HOST, { lifetimeMinutes: 20, releasable: true });
        await service.getTokenForHost("erin", HOST, { lifetimeMinutes: 9, releasable: true });
        await service.releaseReservation(released!);
      } finally {
        await service.close();
      }
      await withDataSource(url, async (ds) => {
        const store = new TokenStore(ds);
        const bob = (await store.find("bob", HOST))!;
        await store.takeLease(bob.id, bob.version, "replica-7", new Date(Date.now() + 30_000), new Date());
        await store.markDraining(bob.id, bob.version, new Date());
        const dave = (await store.find("dave", HOST))!;
        await store.markReauthorizationRequired(dave.id, dave.version, "invalid_grant");
      });
    });

    it("--json prints the entry's metadata: expiry, reservation, pin, lease, drain, re-authorisation, scopes, version, key ids", async () => {
      const run = await cli(["inspect", "alice", HOST, "--json", "--database-url", url]);
      expect(run.code, run.stderr).to.equal(0);
      const m = JSON.parse(run.stdout) as EntryMetadata;
      expect(m).to.include({ userId: "alice", host: HOST, version: 1, username: "x-token-auth", reuse: "whenPossible", refreshable: true, drainingSince: null, refreshLease: null, reauthorizationReason: null });
      expect(m.scopes).to.deep.equal(["repo:read", "repo:write"]);
      expect(m.keyIds).to.deep.equal({ accessToken: "2026-02", refreshToken: "2026-02" });
      expect(m.expiryDate).to.match(ISO);
      const reservedForMs = Date.parse(m.reservedUntilDate!) - Date.now();
      expect(reservedForMs).to.be.within(14 * 60_000, 15 * 60_000);
      expect(m.pinnedUntilDate).to.equal(m.reservedUntilDate);
      expect(m.heldUntil, "held until the pin (no holds)").to.equal(m.reservedUntilDate);
      expect(m.reservationSeq).to.be.greaterThan(0);
      expectNoSecrets(run.stdout + run.stderr, [secrets.value, secrets.refreshToken, key.key]);
    });

    it("counts the live holds of releasable hand-outs (released ones excluded)", async () => {
      const erin = JSON.parse((await cli(["inspect", "erin", HOST, "--json", "--database-url", url])).stdout) as EntryMetadata;
      expect(erin.liveHolds.count).to.equal(2);
      expect(Date.parse(erin.liveHolds.latestUntil!) - Date.now()).to.be.within(8 * 60_000, 9 * 60_000);
      expect(erin.reservedUntilDate, "releasable hand-outs do not write the entry row").to.equal(null);
      expect(erin.heldUntil, "held until the latest live hold").to.equal(erin.liveHolds.latestUntil);
      const alice = JSON.parse((await cli(["inspect", "alice", HOST, "--json", "--database-url", url])).stdout) as EntryMetadata;
      expect(alice.liveHolds).to.deep.equal({ count: 0, latestUntil: null });
      const text = await cli(["inspect", "erin", HOST, "--database-url", url]);
      expect(text.stdout).to.match(/^live holds +2 releasable hand-out\(s\), the last until \S+Z \(in (8|9) min\)$/m);
      expect(text.stdout).to.match(/^held until +\S+Z \(in (8|9) min\) \(the later of the reservation and the live holds\)$/m);
      expect(text.stdout).to.match(/^reserved until +not reserved$/m);
    });

    it("shows a refresh lease, a drain and a re-authorisation mark", async () => {
      const bob = JSON.parse((await cli(["inspect", "bob", HOST, "--json"], { env: { DATABASE_URL: url } })).stdout) as EntryMetadata;
      expect(bob.refreshLease?.owner).to.equal("replica-7");
      expect(bob.refreshLease?.until).to.match(ISO);
      expect(bob.drainingSince).to.match(ISO);
      const dave = JSON.parse((await cli(["inspect", "dave", HOST, "--json"], { env: { DATABASE_URL: url } })).stdout) as EntryMetadata;
      expect(dave).to.include({ reauthorizationReason: "invalid_grant", refreshable: false, refreshLease: null });
      expect(dave.keyIds).to.deep.equal({ accessToken: "2026-02", refreshToken: null });
    });

    it("prints a readable summary without --json (the host is case-insensitive)", async () => {
      const alice = await cli(["inspect", "alice", HOST.toUpperCase(), "--database-url", url]);
      expect(alice.code).to.equal(0);
      expect(alice.stdout).to.match(/^expires +\S+Z \(in (59|60) min\)$/m);
      expect(alice.stdout).to.match(/^reserved until +\S+Z \(in (14|15) min\) \(non-releasable hand-outs\)$/m);
      expect(alice.stdout).to.match(/^held until +\S+Z \(in (14|15) min\) /m);
      expect(alice.stdout).to.match(/^refresh lease +free$/m).and.match(/^draining +no$/m).and.match(/^re-authorisation +not required$/m);
      expect(alice.stdout).to.match(/^key ids +access token: 2026-02, refresh token: 2026-02$/m);
      expect(alice.stdout).to.match(/^scopes +repo:read repo:write$/m);
      const bob = await cli(["inspect", "bob", HOST, "--database-url", url]);
      expect(bob.stdout).to.match(/^refresh lease +replica-7 until \S+Z \(in \d+ s\)$/m);
      expect(bob.stdout).to.match(/^draining +since \S+Z \(\d+ s ago\) \(a forced refresh waits for holders\)$/m);
      const dave = await cli(["inspect", "dave", HOST, "--database-url", url]);
      expect(dave.stdout).to.match(/^re-authorisation +required \(invalid_grant\): the user must connect bitbucket\.example\.com again$/m);
      expect(dave.stdout).to.match(/^refreshable +no/m).and.match(/^key ids +access token: 2026-02, refresh token: -$/m);
      expectNoSecrets(alice.stdout + bob.stdout + dave.stdout, [secrets.value, secrets.refreshToken, "access-bob-SECRET", "refresh-bob-SECRET", "access-dave-SECRET", key.key]);
    });

    it("exits 1 with a clear message when nothing is stored", async () => {
      const run = await cli(["inspect", "carol", HOST, "--database-url", url]);
      expect(run.code).to.equal(1);
      expect(run.stderr).to.include('no token is stored for user "carol" at bitbucket.example.com');
      expect(run.stdout).to.equal("");
    });
  });
}
