import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { bearerToken, type BrokerAuthenticate, type BrokerGrant } from "../broker/authenticate";
import { createTokenBroker, type TokenBroker, type TokenBrokerOptions } from "../broker/token-broker";
import { createTestTokenService, type TestTokenService, type TestTokenServiceOptions } from "./create-test-token-service";

export interface TestTokenBrokerOptions extends TestTokenServiceOptions {
  /** Serve this test service instead of creating one (it is then not closed by close()). */
  testService?: TestTokenService;
  /** Broker options; `authenticate` defaults to the callers registered with addCaller(). */
  broker?: Partial<TokenBrokerOptions>;
}

/** A token broker on 127.0.0.1 in front of a test token service and its fake SCM. */
export interface TestTokenBroker {
  /** The broker's base URL, e.g. "http://127.0.0.1:43210/scm-broker" (what `--broker` takes). */
  url: string;
  broker: TokenBroker;
  /** The service behind the broker, with its fake SCM, clock, flags and metrics. */
  t: TestTokenService;
  /** Registers a caller; returns the bearer credential it must send (SCM_TOKEN_BROKER_TOKEN). */
  addCaller(grant: BrokerGrant): string;
  /** Forgets a caller: its credential is refused from now on. */
  removeCaller(credential: string): void;
  /** Stops the HTTP server and the broker; closes the test service unless you passed one. */
  close(): Promise<void>;
}

/**
 * Runs the token broker against a fake SCM, for tests of code that talks to it (a credential helper,
 * an IDE extension): an HTTP server on a random port of 127.0.0.1, callers with bearer credentials
 * registered by the test, and the broker's clock shared with the service and the fake SCM.
 *
 * @example
 * const b = await startTestTokenBroker({ flags: { opportunisticRefresh: true } });
 * try {
 *   await b.t.connectUser("alice");
 *   const credential = b.addCaller({ userId: "alice", hosts: [b.t.host] });
 *   const handOut = await new BrokerClient({ url: b.url, credential }).handOut({ host: b.t.host });
 *   expect(b.t.scm.isAccessTokenLive(handOut.token)).to.equal(true);
 * } finally {
 *   await b.close();
 * }
 */
export async function startTestTokenBroker(options: TestTokenBrokerOptions = {}): Promise<TestTokenBroker> {
  const { testService, broker: brokerOptions, ...serviceOptions } = options;
  const t = testService ?? (await createTestTokenService(serviceOptions));
  const callers = new Map<string, BrokerGrant>();
  const authenticate: BrokerAuthenticate = (req) => {
    const credential = bearerToken(req);
    const grant = credential === undefined ? undefined : callers.get(credential);
    return grant ?? { refuse: credential === undefined ? "no broker credential: send Authorization: Bearer <credential>" : "unknown broker credential" };
  };
  // The service's clock, logger and metric prefix, unless the test says otherwise.
  const broker = createTokenBroker(t.service, { clock: t.clock, logger: t.logger, metricsPrefix: serviceOptions.serviceOptions?.metricsPrefix, authenticate, ...brokerOptions });
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    // Mounted under a prefix, as an embedding server would: the broker matches the path's end.
    if (!(req.url ?? "").startsWith("/scm-broker/")) {
      res.writeHead(404).end();
      return;
    }
    broker(req, res);
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/scm-broker`,
    broker,
    t,
    addCaller(grant) {
      const credential = randomBytes(24).toString("base64url");
      callers.set(credential, grant);
      return credential;
    },
    removeCaller(credential) {
      callers.delete(credential);
    },
    async close() {
      broker.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      if (!testService) await t.close();
    },
  };
}
