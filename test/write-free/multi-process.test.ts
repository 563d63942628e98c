import { expect } from "chai";
import type { DataSource } from "typeorm";
import { createTokenService } from "../../src/create-token-service";
import type { EncryptionKey } from "../../src/crypto/key-ring";
import { StaticFeatureFlags } from "../../src/flags/static-feature-flags";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import { FakeScmServer } from "../../src/testing/fake-scm";
import type { TokenService } from "../../src/token-service";
import { CLIENT, HOST, metricSum, newEncryptionKey } from "../concurrency/harness";
import type { HandOutReport, HandOutSpec, MetricSample, ReplicaConfig } from "../concurrency/protocol";
import { killReplicas, nextRound, startReplicas, type Replica } from "../concurrency/replicas";
import { closeDataSource, openTestDataSource, runDatabaseUrl, serverKinds } from "../support/databases";
import { uniqueUser } from "../support/service-fixture";

/**
 * Write-free hand-outs across processes: 3 replica processes (test/concurrency/replica-worker.ts) on
 * one database, real clocks, hand out a token every 100–200 ms each for 3.5 s with a 3-second lifetime
 * (so most hand-outs are covered by an earlier one's pin and write nothing), while one request that
 * the token cannot cover (31 minutes from a 30-minute token) drains and refreshes it. The fake SCM
 * (Bitbucket DC: a refresh revokes the old access token at once) runs here and logs when the refresh
 * began. Checked: exactly one refresh; it began only after every hand-out of the old token had
 * reached the end of its lifetime; nothing was broken; some hand-outs were write-free.
 */

const WORKERS = 3;
const FLAGS = { opportunisticRefresh: true, horizonMinutes: 20, drain: true };
const LIFETIME_MINUTES = 0.05; // 3 s
const LIFETIME_MS = 3_000;

for (const server of serverKinds()) {
  describe(`write-free hand-outs in separate processes (${server})`, function () {
    this.timeout(120_000);
    let key: EncryptionKey;
    let dataSource: DataSource | undefined;
    let replicas: Replica[] = [];
    let scm: FakeScmServer | undefined;
    let local: TokenService | undefined;
    const refreshBegan: number[] = [];

    before(async function () {
      key = newEncryptionKey();
      dataSource = await openTestDataSource(server);
      [replicas, scm] = await Promise.all([startReplicas(WORKERS, key.key, "write-free"), FakeScmServer.start({ profile: "bitbucket_dc" })]);
      const config: ReplicaConfig = { databaseUrl: runDatabaseUrl(server), scmBaseUrl: scm.baseUrl, host: HOST, flags: FLAGS, drainPollMs: 100, lease: { waitForOtherMs: 10_000 }, retry: { timeoutMs: 5_000 } };
      await Promise.all(replicas.map((r) => r.configure(config)));
      local = await createTokenService({
        dataSource,
        providers: [new BitbucketServerProvider({ host: HOST, baseUrl: scm.baseUrl, ...CLIENT })],
        encryptionKeys: [key],
        flags: new StaticFeatureFlags({ ...FLAGS, opportunisticRefresh: false }),
      });
      const arm = () => {
        const pause = scm!.pauseAt("afterValidate");
        pause.reached.then(
          () => {
            refreshBegan.push(Date.now());
            arm();
            pause.release();
          },
          () => undefined,
        );
      };
      arm();
    });

    after(async () => {
      await killReplicas(replicas);
      await scm?.close();
      if (dataSource) await closeDataSource(dataSource);
    });

    it("a drained refresh never revokes a token handed out write-free before its lifetime ends; one refresh, nothing broken", async () => {
      const userId = uniqueUser("wf-mp");
      const issued = scm!.issueTokens({ userId });
      await local!.storeToken(userId, HOST, { value: issued.accessToken, refreshToken: issued.refreshToken, expiryDate: new Date(Date.now() + 30 * 60_000), scopes: issued.scopes });
      const round = nextRound();
      const plans = replicas.map((_, w) => {
        const handOuts: HandOutSpec[] = [];
        for (let i = 0, at = w * 37; at < 3_500; i++, at += 100 + ((i * 53 + w * 31) % 100)) {
          handOuts.push({ id: `w${w}-${i}`, delayMs: at, lifetimeMinutes: LIFETIME_MINUTES, releasable: false, maxWaitMs: 20_000 });
        }
        if (w === 0) handOuts.push({ id: "forced", delayMs: 2_500, lifetimeMinutes: 31, releasable: false, maxWaitMs: 20_000 });
        return handOuts;
      });
      const before = await metrics();
      for (const [w, r] of replicas.entries()) r.send({ type: "armHandOuts", round, userId, handOuts: plans[w] });
      await Promise.all(replicas.map((r) => r.next("armed", 20_000, (m) => m.round === round)));
      const reports = new Map<string, HandOutReport>();
      const pending = replicas.flatMap((r, w) => plans[w].map((spec) => r.next("handedOut", 60_000, (m) => m.round === round && m.id === spec.id).then((m) => reports.set(spec.id, m.report))));
      for (const r of replicas) r.send({ type: "go", round });
      await Promise.all(pending);

      const failures = [...reports.entries()].filter(([, r]) => !r.ok);
      expect(failures, JSON.stringify(failures)).to.deep.equal([]);
      expect(refreshBegan, "exactly one refresh").to.have.length(1);
      const forced = reports.get("forced");
      expect(forced?.ok && forced.value !== issued.accessToken, "the forced request got a new token").to.equal(true);
      const old = [...reports.values()].filter((r): r is Extract<HandOutReport, { ok: true }> => r.ok && r.value === issued.accessToken);
      expect(old.length).to.be.greaterThan(10);
      for (const r of old) expect(refreshBegan[0], "the refresh began after this old-token hand-out's lifetime").to.be.at.least(r.startedAt + LIFETIME_MS);
      const after = await metrics();
      const delta = (name: string) => after.reduce((s, samples, w) => s + metricSum(samples, name) - metricSum(before[w], name), 0);
      expect(delta("scm_token_reservations_broken_total")).to.equal(0);
      expect(delta("scm_token_handouts_write_free_total"), "some hand-outs were write-free").to.be.greaterThan(0);
    });

    let requestCounter = 0;
    async function metrics(): Promise<MetricSample[][]> {
      return Promise.all(
        replicas.map(async (r) => {
          const requestId = ++requestCounter;
          r.send({ type: "readMetrics", requestId });
          return (await r.next("metrics", 20_000, (m) => m.requestId === requestId)).samples;
        }),
      );
    }
  });
}
