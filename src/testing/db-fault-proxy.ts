import { createConnection, createServer, type Server, type Socket } from "node:net";

/** What the proxy does to traffic right now. */
export type DbFaultMode =
  | { kind: "pass" }
  | { kind: "cut"; until: number }
  | { kind: "black-hole"; answersOnly: boolean }
  | { kind: "slow"; latencyMs: number };

/** One client connection and its upstream connection to the database. */
interface Pair {
  client: Socket;
  upstream: Socket;
  /** Bytes held back while black-holed, per direction, delivered in order when traffic passes again. */
  held: { toUpstream: Buffer[]; toClient: Buffer[] };
  /** When the last delayed chunk of each direction goes out (keeps chunks in order in slow mode). */
  slowTail: { toUpstream: number; toClient: number };
}

export interface DbFaultProxyOptions {
  /**
   * Where the database is: a database URL (`mariadb://root@127.0.0.1:3306/db`, `mysql://…`,
   * `postgres://…`) or `{ host, port }`. With a URL, `proxy.url` is the same URL pointing at the proxy.
   */
  target: string | { host: string; port: number };
}

/**
 * A TCP proxy on 127.0.0.1 in front of a database (MySQL, MariaDB — any TCP protocol, PostgreSQL
 * too) that injects the network faults a service meets in production. Point the service's
 * `databaseUrl` (or DataSource) at `proxy.url`, then switch modes at the moment that matters:
 *
 * - `pass()`: forward everything (the start mode);
 * - `cut(ms)`: an outage — every open connection is reset, and new ones are reset as soon as they
 *   arrive (clients see ECONNRESET / PROTOCOL_CONNECTION_LOST) until `ms` of real time have passed;
 *   then connections are accepted again. `cut()` without `ms` lasts until `pass()`;
 * - `blackHole()`: a network partition — connections stay open and new ones are accepted, but no
 *   byte moves in either direction, so clients hang until their own deadline. Bytes are held, not
 *   lost (as TCP retransmits them): `pass()` delivers them, so a statement sent into the black hole
 *   may still run after the partition heals;
 * - `blackHole({ answersOnly: true })`: requests still reach the database, its answers do not — a
 *   write is applied but the client never hears so (the "did my commit happen?" case);
 * - `slow(ms)`: every chunk is delayed by `ms`.
 *
 * Faults take real time (a FakeClock does not move sockets): keep outages short in unit tests.
 *
 * @example
 * import { createTokenService, StorageError } from "scm-token-service";
 * import { DbFaultProxy, FakeScmServer, providerForFakeScm } from "scm-token-service/testing";
 *
 * const scm = await FakeScmServer.start({ profile: "gitlab" });
 * const proxy = await DbFaultProxy.start({ target: "mariadb://root@127.0.0.1:3306/tokens" });
 * const service = await createTokenService({
 *   databaseUrl: proxy.url, // migrations run through the proxy too
 *   providers: [providerForFakeScm(scm)],
 *   encryptionKeys: [{ id: "k1", key: "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" }],
 *   statementTimeoutMs: 500,
 * });
 * const issued = scm.issueTokens({ userId: "user-1" });
 * await service.storeToken("user-1", "gitlab.example.com", { value: issued.accessToken, refreshToken: issued.refreshToken, expiryDate: issued.expiresAt });
 *
 * proxy.blackHole(); // the connection stays open, nothing answers
 * const error = await service.getTokenForHost("user-1", "gitlab.example.com").catch((e: unknown) => e);
 * console.log(error instanceof StorageError && error.driverCode); // "STATEMENT_TIMEOUT", after 500 ms
 *
 * proxy.cut(1_000); // now the database is unreachable for 1 s …
 * await proxy.passing(); // … and back
 * console.log((await service.getTokenForHost("user-1", "gitlab.example.com"))?.value === issued.accessToken); // true
 *
 * await service.close();
 * await proxy.close();
 * await scm.close();
 */
export class DbFaultProxy {
  private mode: DbFaultMode = { kind: "pass" };
  private readonly pairs = new Set<Pair>();
  private cutTimer: NodeJS.Timeout | undefined;
  private passingWaiters: Array<() => void> = [];
  private accepted = 0;
  private refused = 0;

  private constructor(
    private readonly server: Server,
    private readonly targetHost: string,
    private readonly targetPort: number,
    private readonly targetUrl: URL | undefined,
  ) {
    server.on("connection", (client) => this.onConnection(client));
  }

  /** Starts the proxy on an ephemeral port of 127.0.0.1. */
  static async start(options: DbFaultProxyOptions): Promise<DbFaultProxy> {
    let host: string;
    let port: number;
    let url: URL | undefined;
    if (typeof options.target === "string") {
      url = new URL(options.target);
      host = url.hostname;
      port = Number(url.port || defaultPort(url.protocol));
    } else {
      ({ host, port } = options.target);
    }
    if (!host || !Number.isInteger(port) || port <= 0) throw new RangeError(`DbFaultProxy: target needs a host and a port, got ${String(options.target)}`);
    const server = createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    return new DbFaultProxy(server, host, port, url);
  }

  /** The port the proxy listens on (127.0.0.1). */
  get port(): number {
    const address = this.server.address();
    if (!address || typeof address === "string") throw new Error("DbFaultProxy: not listening");
    return address.port;
  }

  /** The target URL with host and port replaced by the proxy's (only when the target was a URL). */
  get url(): string {
    if (!this.targetUrl) throw new Error("DbFaultProxy: started with { host, port }; connect to 127.0.0.1:proxy.port");
    const url = new URL(this.targetUrl.href);
    url.hostname = "127.0.0.1";
    url.port = String(this.port);
    return url.href;
  }

  /** The current mode (`cut` carries its end as epoch ms). */
  get currentMode(): DbFaultMode {
    return this.mode;
  }

  /** Connections accepted and forwarded / reset because of a cut, since the start. */
  get stats(): { open: number; accepted: number; refused: number } {
    return { open: this.pairs.size, accepted: this.accepted, refused: this.refused };
  }

  /** Forward everything again; bytes held by a black hole are delivered. */
  pass(): void {
    this.clearCutTimer();
    this.mode = { kind: "pass" };
    for (const pair of this.pairs) this.flushHeld(pair);
    const waiters = this.passingWaiters;
    this.passingWaiters = [];
    for (const wake of waiters) wake();
  }

  /** Resets every connection and every new one until `forMs` of real time have passed (or until pass()). */
  cut(forMs?: number): void {
    this.clearCutTimer();
    this.mode = { kind: "cut", until: forMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + forMs };
    for (const pair of [...this.pairs]) this.destroyPair(pair, true);
    if (forMs !== undefined) {
      this.cutTimer = setTimeout(() => this.pass(), forMs);
      this.cutTimer.unref();
    }
  }

  /** Keeps connections open but moves no byte (clients hang) until pass(); `answersOnly`: only the database's answers are held. */
  blackHole(options: { answersOnly?: boolean } = {}): void {
    this.clearCutTimer();
    this.mode = { kind: "black-hole", answersOnly: options.answersOnly ?? false };
  }

  /** Delays every chunk, both directions, by `latencyMs`. */
  slow(latencyMs: number): void {
    if (!Number.isFinite(latencyMs) || latencyMs < 0) throw new RangeError(`DbFaultProxy.slow: latencyMs must be >= 0, got ${latencyMs}`);
    this.clearCutTimer();
    this.mode = { kind: "slow", latencyMs };
  }

  /** Resolves when the proxy passes traffic (at once if it does; after a timed cut, when it ends). */
  passing(): Promise<void> {
    if (this.mode.kind === "pass") return Promise.resolve();
    return new Promise((resolve) => this.passingWaiters.push(resolve));
  }

  /** Closes every connection and stops listening. */
  async close(): Promise<void> {
    this.clearCutTimer();
    for (const pair of [...this.pairs]) this.destroyPair(pair, false);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.pass();
  }

  private clearCutTimer(): void {
    if (this.cutTimer) clearTimeout(this.cutTimer);
    this.cutTimer = undefined;
  }

  private onConnection(client: Socket): void {
    if (this.mode.kind === "cut") {
      this.refused++;
      client.on("error", () => undefined);
      client.resetAndDestroy();
      return;
    }
    this.accepted++;
    client.setNoDelay(true);
    const upstream = createConnection({ host: this.targetHost, port: this.targetPort, noDelay: true });
    const pair: Pair = { client, upstream, held: { toUpstream: [], toClient: [] }, slowTail: { toUpstream: 0, toClient: 0 } };
    this.pairs.add(pair);
    client.on("data", (chunk: Buffer) => this.forward(pair, "toUpstream", chunk));
    upstream.on("data", (chunk: Buffer) => this.forward(pair, "toClient", chunk));
    // Either side ending or failing ends both, as a real connection would.
    const end = () => this.destroyPair(pair, false);
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
  }

  private forward(pair: Pair, direction: "toUpstream" | "toClient", chunk: Buffer): void {
    const to = direction === "toUpstream" ? pair.upstream : pair.client;
    const mode = this.mode;
    const holds = mode.kind === "black-hole" && (direction === "toClient" || !mode.answersOnly);
    if (holds || pair.held[direction].length > 0) {
      pair.held[direction].push(chunk);
      return;
    }
    if (mode.kind === "slow") {
      // Keep order: a chunk never overtakes the one before it.
      const at = Math.max(Date.now() + mode.latencyMs, pair.slowTail[direction]);
      pair.slowTail[direction] = at;
      setTimeout(() => {
        if (!to.destroyed) to.write(chunk);
      }, at - Date.now());
      return;
    }
    if (!to.destroyed) to.write(chunk);
  }

  private flushHeld(pair: Pair): void {
    for (const direction of ["toUpstream", "toClient"] as const) {
      const to = direction === "toUpstream" ? pair.upstream : pair.client;
      const chunks = pair.held[direction];
      pair.held[direction] = [];
      for (const chunk of chunks) if (!to.destroyed) to.write(chunk);
    }
  }

  private destroyPair(pair: Pair, reset: boolean): void {
    if (!this.pairs.delete(pair)) return;
    for (const socket of [pair.client, pair.upstream]) {
      socket.on("error", () => undefined);
      if (reset && !socket.destroyed) socket.resetAndDestroy();
      else socket.destroy();
    }
  }
}

function defaultPort(protocol: string): number {
  if (protocol === "postgres:" || protocol === "postgresql:") return 5432;
  return 3306;
}
