import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import { BrokerClient, createTokenBroker, type HandOutResponseBody } from "../../src/broker";
import { startTestTokenBroker, type TestTokenBroker } from "../../src/testing";
import { closeDataSource, dbKinds, openTestDataSource } from "../support/databases";

interface Reply {
  status: number;
  headers: Headers;
  body: Record<string, unknown> & { error?: { code: string; message: string; retryAfterSeconds?: number } };
}

/** Broker protocol tests over real HTTP, on the embedded database and a fake Bitbucket DC. */
describe("token broker", () => {
  let b: TestTokenBroker;
  let alice: string;
  let issued: { accessToken: string; refreshToken?: string };

  async function post(path: string, body: unknown, options: { credential?: string; contentType?: string; method?: string; raw?: string } = {}): Promise<Reply> {
    const response = await fetch(b.url + path, {
      method: options.method ?? "POST",
      headers: {
        ...(options.contentType === "" ? {} : { "Content-Type": options.contentType ?? "application/json" }),
        ...(options.credential === "" ? {} : { Authorization: `Bearer ${options.credential ?? alice}` }),
      },
      ...(options.method === "GET" ? {} : { body: options.raw ?? JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as Reply["body"]) : {} };
  }

  beforeEach(async () => {
    b = await startTestTokenBroker({ flags: { opportunisticRefresh: true }, serviceOptions: { metricsPrefix: "acme_" } });
    issued = await b.t.connectUser("alice");
    alice = b.addCaller({ userId: "alice", callerId: "workspace-1", hosts: [b.t.host], maxLifetimeMinutes: 30 });
  });

  afterEach(async () => {
    await b.close();
  });

  it("hands out a releasable token with no-store, and releases it once by its handle", async () => {
    const reply = await post("/token", { host: b.t.host, lifetimeMinutes: 10 });

    expect(reply.status).to.equal(200);
    expect(reply.headers.get("cache-control")).to.equal("no-store");
    const handOut = reply.body as unknown as HandOutResponseBody;
    expect(handOut.token).to.equal(issued.accessToken);
    expect(handOut.reservedUntil).to.equal(new Date(b.t.clock.now().getTime() + 10 * 60_000).toISOString());
    // Opaque: neither the token nor the service's ids can be read from the handle.
    expect(handOut.releaseHandle).to.match(/^h1\.[A-Za-z0-9_-]+$/);
    expect(Buffer.from(handOut.releaseHandle.slice(3), "base64url").toString("latin1")).to.not.match(/userId|entryId|holdId|alice/);

    const first = await post("/release", { releaseHandle: handOut.releaseHandle });
    const again = await post("/release", { releaseHandle: handOut.releaseHandle });
    expect([first.status, first.body.released, again.status, again.body.released]).to.deep.equal([200, true, 200, false]);
    expect(first.headers.get("cache-control")).to.equal("no-store");
  });

  it("a release handle works only for the caller it was issued to, and an altered one for nobody", async () => {
    const handOut = (await post("/token", { host: b.t.host })).body as unknown as HandOutResponseBody;
    const sameUserOtherWorkspace = b.addCaller({ userId: "alice", callerId: "workspace-2", hosts: [b.t.host] });
    const otherUser = b.addCaller({ userId: "bob", hosts: [b.t.host] });
    // One character in the middle changed (the last one may only carry padding bits).
    const altered = handOut.releaseHandle.slice(0, 20) + (handOut.releaseHandle[20] === "A" ? "B" : "A") + handOut.releaseHandle.slice(21);

    for (const [credential, handle] of [[sameUserOtherWorkspace, handOut.releaseHandle], [otherUser, handOut.releaseHandle], [alice, altered], [alice, "h1.AAAA"], [alice, "not-a-handle"]]) {
      const reply = await post("/release", { releaseHandle: handle }, { credential });
      expect([reply.status, reply.body.error?.code]).to.deep.equal([403, "RELEASE_HANDLE_INVALID"]);
    }
    expect((await post("/release", { releaseHandle: handOut.releaseHandle })).body.released).to.equal(true);
  });

  it("releases by token for clients that only keep the token (git before 2.46), only for the caller it was handed to", async () => {
    const handOut = (await post("/token", { host: b.t.host })).body as unknown as HandOutResponseBody;
    const other = b.addCaller({ userId: "alice", callerId: "workspace-2", hosts: [b.t.host] });

    expect((await post("/release", { host: b.t.host, token: handOut.token }, { credential: other })).body.released).to.equal(false);
    expect((await post("/release", { host: b.t.host, token: "not-the-token" })).body.released).to.equal(false);
    expect((await post("/release", { host: b.t.host, token: handOut.token })).body.released).to.equal(true);
    expect((await post("/release", { host: b.t.host, token: handOut.token })).body.released).to.equal(false);
    const metrics = await b.t.metricsText();
    expect(metrics).to.include('acme_scm_token_broker_releases_total{result="unknown_token"} 3');
    expect(metrics).to.include('acme_scm_token_broker_releases_total{result="released"} 1');
  });

  it("two hand-outs of one token to one caller (two git processes) are released one by one by token", async () => {
    const first = (await post("/token", { host: b.t.host })).body as unknown as HandOutResponseBody;
    const second = (await post("/token", { host: b.t.host })).body as unknown as HandOutResponseBody;
    expect(second.token).to.equal(first.token);

    const releases = [];
    for (let i = 0; i < 3; i++) releases.push((await post("/release", { host: b.t.host, token: first.token })).body.released);
    expect(releases).to.deep.equal([true, true, false]);
  });

  it("a deferred release (git's store) is not a release at once", async () => {
    const handOut = (await post("/token", { host: b.t.host })).body as unknown as HandOutResponseBody;

    expect((await post("/release", { releaseHandle: handOut.releaseHandle, deferred: true })).body.released).to.equal(true);
    const metrics = await b.t.metricsText();
    expect(metrics).to.include('acme_scm_token_broker_releases_total{result="deferred"} 1');
    expect(metrics).to.not.match(/scm_token_reservations_released_total\{[^}]*\} 1/); // default delay 60 s
    // A later release by token finds nothing to do: the deferred release owns the hand-out.
    expect((await post("/release", { host: b.t.host, token: handOut.token })).body.released).to.equal(false);
  });

  it("a deferred release happens after deferredReleaseMs", async () => {
    await b.close();
    b = await startTestTokenBroker({ flags: { opportunisticRefresh: true }, broker: { deferredReleaseMs: 1 } });
    await b.t.connectUser("alice");
    alice = b.addCaller({ userId: "alice", hosts: [b.t.host] });
    const handOut = (await post("/token", { host: b.t.host })).body as unknown as HandOutResponseBody;

    await post("/release", { releaseHandle: handOut.releaseHandle, deferred: true });
    // The broker's timer runs on real time (it outlives the request): wait for it, bounded.
    const deadline = Date.now() + 5_000;
    while (!(await b.t.metricsText()).includes('scm_token_broker_releases_total{result="released"} 1')) {
      expect(Date.now(), "the deferred release never happened").to.be.lessThan(deadline);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(await b.t.metricsText()).to.match(/scm_token_reservations_released_total\{[^}]*\} 1/);
  });

  it("refuses unauthenticated callers (401) and requests beyond the grant (403), with the broker's codes", async () => {
    b.addCaller({ userId: "alice", hosts: [b.t.host], scopes: ["REPO_READ"] });
    const scoped = b.addCaller({ userId: "alice", hosts: [b.t.host], scopes: ["REPO_READ"] });
    const cases: [Promise<Reply>, number, string][] = [
      [post("/token", { host: b.t.host }, { credential: "" }), 401, "UNAUTHENTICATED"],
      [post("/token", { host: b.t.host }, { credential: "forged" }), 401, "UNAUTHENTICATED"],
      [post("/token", { host: "gitlab.com" }), 403, "FORBIDDEN"],
      [post("/token", { host: b.t.host, lifetimeMinutes: 31 }), 403, "FORBIDDEN"],
      [post("/token", { host: b.t.host, scopes: ["REPO_WRITE"] }, { credential: scoped }), 403, "FORBIDDEN"],
      [post("/token", { host: b.t.host, lifetimeMinutes: -1 }), 400, "BAD_REQUEST"],
      [post("/token", {}), 400, "BAD_REQUEST"],
      [post("/release", { releaseHandle: "x" }, { credential: "forged" }), 401, "UNAUTHENTICATED"],
    ];
    for (const [pending, status, code] of cases) {
      const reply = await pending;
      expect([reply.status, reply.body.error?.code], JSON.stringify(reply.body)).to.deep.equal([status, code]);
      expect(reply.headers.get("cache-control")).to.equal("no-store");
    }
    const metrics = await b.t.metricsText();
    expect(metrics).to.include('acme_scm_token_broker_handouts_total{host="other",outcome="unauthenticated"} 2');
    expect(metrics).to.include('acme_scm_token_broker_handouts_total{host="other",outcome="forbidden"} 1'); // gitlab.com: not the caller's to name
    expect(metrics).to.include('acme_scm_token_broker_handouts_total{host="bitbucket.example.com",outcome="forbidden"} 2');
  });

  it("answers 404 NO_TOKEN when nothing is stored, 409 REAUTHORIZATION_REQUIRED when the SCM refuses the refresh", async () => {
    const bob = b.addCaller({ userId: "bob", hosts: [b.t.host] });
    const none = await post("/token", { host: b.t.host }, { credential: bob });
    expect([none.status, none.body.error?.code]).to.deep.equal([404, "NO_TOKEN"]);

    b.t.scm.revokeFamilyOf(issued.accessToken);
    b.t.clock.advanceMinutes(61); // expired: the broker's hand-out must refresh, and the SCM refuses
    const reauth = await post("/token", { host: b.t.host });
    expect([reauth.status, reauth.body.error?.code]).to.deep.equal([409, "REAUTHORIZATION_REQUIRED"]);
    expect(reauth.body.error?.message).to.include("can no longer be refreshed");
    expect(await b.t.metricsText()).to.include('acme_scm_token_broker_handouts_total{host="bitbucket.example.com",outcome="reauthorization_required"} 1');
  });

  it("refuses oversized, non-JSON and non-JSON-typed bodies, other methods and paths", async () => {
    const cases: [Promise<Reply>, number, string][] = [
      [post("/token", undefined, { raw: JSON.stringify({ host: b.t.host, pad: "x".repeat(10_000) }) }), 413, "BODY_TOO_LARGE"],
      [post("/token", undefined, { raw: "{not json" }), 400, "BAD_REQUEST"],
      [post("/token", undefined, { raw: "[1]" }), 400, "BAD_REQUEST"],
      [post("/token", { host: b.t.host }, { contentType: "text/plain" }), 415, "UNSUPPORTED_MEDIA_TYPE"],
      [post("/token", undefined, { method: "GET" }), 405, "METHOD_NOT_ALLOWED"],
      [post("/tokens", { host: b.t.host }), 404, "NOT_FOUND"],
    ];
    for (const [pending, status, code] of cases) {
      const reply = await pending;
      expect([reply.status, reply.body.error?.code]).to.deep.equal([status, code]);
    }
    // Without Content-Length (chunked): the limit holds while reading, and the client still gets the 413.
    const chunked = await fetch(`${b.url}/token`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${alice}` },
      body: new ReadableStream({
        start(controller) {
          for (let i = 0; i < 20; i++) controller.enqueue(new TextEncoder().encode(" ".repeat(1000)));
          controller.close();
        },
      }),
      duplex: "half",
    } as RequestInit & { duplex: "half" });
    expect(chunked.status).to.equal(413);
    expect(((await chunked.json()) as Reply["body"]).error?.code).to.equal("BODY_TOO_LARGE");
  });

  it("answers 429 beyond maxConcurrentPerCaller for one caller; other callers go on", async () => {
    await b.close();
    b = await startTestTokenBroker({ flags: { opportunisticRefresh: true }, broker: { maxConcurrentPerCaller: 1 } });
    issued = await b.t.connectUser("alice");
    await b.t.connectUser("bob");
    alice = b.addCaller({ userId: "alice", hosts: [b.t.host] });
    const bob = b.addCaller({ userId: "bob", hosts: [b.t.host] });
    b.t.clock.advanceMinutes(59); // every hand-out must refresh first
    const held = b.t.scm.pauseAt("afterValidate");
    const first = post("/token", { host: b.t.host });
    await held.reached;

    const second = await post("/token", { host: b.t.host });
    expect([second.status, second.body.error?.code, second.headers.get("retry-after")]).to.deep.equal([429, "TOO_MANY_REQUESTS", "1"]);
    const bobs = post("/token", { host: b.t.host }, { credential: bob }); // not limited by alice's request
    held.release();
    expect((await first).status).to.equal(200);
    expect((await bobs).status).to.equal(200);
    expect((await post("/token", { host: b.t.host })).status).to.equal(200); // alice's slot is free again
  });

  it("never puts a token into logs or metrics", async () => {
    const handOut = (await post("/token", { host: b.t.host })).body as unknown as HandOutResponseBody;
    await post("/release", { host: b.t.host, token: handOut.token });
    await post("/token", { host: b.t.host }, { credential: handOut.token }); // a token sent as the broker credential
    const everything = (await b.t.metricsText()) + JSON.stringify(b.t.logger.records);
    for (const secret of [handOut.token, issued.refreshToken!, alice, handOut.releaseHandle]) expect(everything.includes(secret)).to.equal(false);
  });

  it("takes a body a framework already parsed (Express's express.json(), Fastify's request.body)", async () => {
    const grant = { userId: "alice", hosts: [b.t.host] };
    const broker = createTokenBroker(b.t.service, { authenticate: () => grant, clock: b.t.clock, metricsPrefix: "framework_" });
    const server = createServer(async (req, res) => {
      let text = "";
      for await (const chunk of req) text += String(chunk);
      (req as IncomingMessage & { body?: unknown }).body = JSON.parse(text); // what express.json() does
      broker(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const handOut = await new BrokerClient({ url: `http://127.0.0.1:${port}/mounted/here`, credential: "any" }).handOut({ host: b.t.host });
      expect(handOut.token).to.equal(issued.accessToken);
      expect(await b.t.metricsText()).to.include('framework_scm_token_broker_handouts_total{host="bitbucket.example.com",outcome="handed_out"} 1');
    } finally {
      broker.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

/** The release handle carries the service's hand-out reference through JSON: it must come back usable on every database. */
for (const kind of dbKinds()) {
  describe(`token broker on ${kind}`, () => {
    it("a hand-out is released by its handle and by its token", async () => {
      const dataSource = await openTestDataSource(kind, 2);
      const b = await startTestTokenBroker({ dataSource });
      try {
        const userId = `broker-${randomBytes(4).toString("hex")}`; // the run's database is shared with other suites
        await b.t.connectUser(userId);
        const client = new BrokerClient({ url: b.url, credential: b.addCaller({ userId, hosts: [b.t.host] }) });
        const first = await client.handOut({ host: b.t.host });
        const second = await client.handOut({ host: b.t.host });

        expect(await client.release({ releaseHandle: first.releaseHandle })).to.deep.equal({ released: true });
        expect(await client.release({ host: b.t.host, token: second.token })).to.deep.equal({ released: true });
        expect(await client.release({ releaseHandle: second.releaseHandle })).to.deep.equal({ released: false });
        expect(await b.t.metricsText()).to.match(/scm_token_reservations_released_total\{[^}]*\} 2/);
      } finally {
        await b.close();
        await closeDataSource(dataSource);
      }
    });
  });
}
