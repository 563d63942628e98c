import { expect } from "chai";
import { dbKinds } from "./support/databases";
import { serviceOn, uniqueUser } from "./support/service-fixture";

/**
 * A provider whose refresh leaves the old access token valid (Bitbucket Cloud by default): a refresh
 * breaks no holder, so a reservation never stands in the way of one.
 */
for (const kind of dbKinds()) {
  describe(`a provider that does not revoke on refresh (bitbucket_cloud) on ${kind}`, () => {
    let t: Awaited<ReturnType<typeof serviceOn>>;
    afterEach(async () => t?.close());

    it("a request the token cannot cover refreshes at once while others hold the token; their copy stays valid", async () => {
      t = await serviceOn(kind, { profile: "bitbucket_cloud" });
      expect(t.service.getProvider(t.host).requiresOpportunisticRefresh, "the profile's provider does not revoke").to.equal(false);
      const user = uniqueUser("nonrevoking");
      const issued = await t.connectUser(user);
      t.clock.set(issued.expiresAt!.getTime() - 15 * 60_000);
      const held = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 10 }); // reserves the token
      const fresh = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 20 }); // cannot be covered by 15 minutes
      expect(fresh!.value).to.not.equal(held!.value);
      expect(t.scm.isAccessTokenLive(held!.value), "the holder's copy still works").to.equal(true);
      expect(t.scm.counters.refreshSuccesses, "one refresh").to.equal(1);
    });
  });
}
