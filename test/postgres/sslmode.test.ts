import { expect } from "chai";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { TLSSocket } from "node:tls";
import { createTokenService } from "../../src/create-token-service";
import { ConfigurationError } from "../../src/errors";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import { openDataSource } from "../../src/storage/data-source";
import { DatabaseConfigurationError } from "../../src/storage/startup-errors";
import { dbKinds, ensureRunDatabase } from "../support/databases";
import { selfSignedCert } from "../support/self-signed-cert";
import { urlChecks } from "../support/url-checks";

const PASSWORD = "pg-Tls-secret-9";

const { sslOf, refusal, startFailure } = urlChecks(PASSWORD);

describe("postgres:// URLs: ?sslmode= as libpq spells it (no server needed)", () => {
  it("disable, allow and prefer connect without TLS (pg cannot fall back from one to the other); none given leaves pg's default", () => {
    for (const mode of ["disable", "allow", "prefer"]) expect(sslOf(`postgres://app:${PASSWORD}@db/tokens?sslmode=${mode}`), mode).to.equal(false);
    expect(sslOf("postgres://app@db/tokens")).to.equal("absent");
  });

  it("require encrypts without verifying the certificate; verify-ca verifies the chain only; verify-full the chain and the host name", () => {
    expect(sslOf("postgresql://app@db/tokens?sslmode=require")).to.deep.equal({ rejectUnauthorized: false });
    const verifyCa = sslOf("postgres://app@db/tokens?sslmode=verify-ca") as { rejectUnauthorized: boolean; checkServerIdentity: () => unknown };
    expect(verifyCa.rejectUnauthorized).to.equal(true);
    expect(verifyCa.checkServerIdentity()).to.equal(undefined);
    expect(sslOf("postgres://app@db/tokens?sslmode=verify-full")).to.deep.equal({ rejectUnauthorized: true });
  });

  it("any other sslmode is a ConfigurationError naming the parameter and the allowed values", () => {
    for (const mode of ["", "true", "REQUIRE", "no-verify", "verify_full"]) {
      const e = refusal(`postgres://app:${PASSWORD}@db/tokens?sslmode=${mode}`);
      expect(e.message, mode).to.include("sslmode").and.include("disable|allow|prefer|require|verify-ca|verify-full");
    }
    expect(refusal("postgres://app@db/tokens?sslmode=disable&sslmode=require").message).to.include("sslmode is given 2 times");
  });

  it("any other query parameter is a ConfigurationError naming it, never its value (it may be the password)", () => {
    for (const name of ["password", "sslrootcert", "connect_timeout", "ssl", "application_name"]) {
      const e = refusal(`postgres://app@db/tokens?sslmode=require&${name}=${PASSWORD}`);
      expect(e.message, name).to.include(`the query parameter "${name}" is not supported`).and.include("sslmode=");
    }
  });

  it("createTokenService({ databaseUrl }) refuses it before connecting, with the same typed error", async () => {
    const error = await createTokenService({
      databaseUrl: `postgres://app:${PASSWORD}@127.0.0.1:1/tokens?sslmode=on`,
      providers: [new BitbucketServerProvider({ host: "bitbucket.example.com", baseUrl: "http://127.0.0.1:9", clientId: "c", clientSecret: "s" })],
      encryptionKeys: [{ id: "k1", key: Buffer.alloc(32, 1).toString("base64") }],
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(ConfigurationError).and.not.be.instanceOf(DatabaseConfigurationError);
    expect((error as Error).message).to.include('sslmode "on" is not supported').and.not.include(PASSWORD);
  });
});

/**
 * A stand-in PostgreSQL server that answers pg's SSLRequest with "S", completes a TLS handshake with
 * a self-signed certificate, and then refuses the login (28P01); a plain connection is refused the
 * same way. It records what each connection did.
 */
class FakeTlsServer {
  private constructor(
    /** What each connection did: "ssl-request", "tls" (handshake done), "tls-failed", "plain". */
    readonly seen: string[],
    private readonly server: Server,
  ) {}

  static async start(): Promise<FakeTlsServer> {
    const { key, cert } = selfSignedCert();
    const seen: string[] = [];
    const server = createServer((socket: Socket) => {
      socket.on("error", () => undefined);
      socket.once("data", (first) => {
        if (first.length === 8 && first.readInt32BE(4) === 80877103) {
          seen.push("ssl-request");
          socket.write("S");
          const secure = new TLSSocket(socket, { isServer: true, key, cert });
          secure.on("error", () => seen.push("tls-failed"));
          secure.once("secure", () => seen.push("tls"));
          secure.once("data", () => secure.end(loginRefused()));
        } else {
          seen.push("plain");
          socket.end(loginRefused());
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return new FakeTlsServer(seen, server);
  }

  url(mode: string): string {
    return `postgres://app:${PASSWORD}@127.0.0.1:${(this.server.address() as AddressInfo).port}/tokens?sslmode=${mode}`;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** PostgreSQL's ErrorResponse: FATAL 28P01, as a server refusing the password sends it. */
function loginRefused(): Buffer {
  const field = (type: string, value: string) => Buffer.from(`${type}${value}\0`, "utf8");
  const body = Buffer.concat([field("S", "FATAL"), field("V", "FATAL"), field("C", "28P01"), field("M", 'password authentication failed for user "app"'), Buffer.from([0])]);
  const head = Buffer.alloc(5);
  head.write("E", 0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

describe("postgres:// URLs: what each sslmode does on the wire (a stand-in TLS server, no PostgreSQL needed)", () => {
  let fake: FakeTlsServer;

  before(async () => {
    fake = await FakeTlsServer.start();
  });

  after(async () => {
    await fake?.close();
  });

  beforeEach(() => {
    fake.seen.length = 0;
  });

  it("require: a TLS session although the certificate is self-signed; then the server's own answer (the login refused)", async () => {
    const e = await startFailure(fake.url("require"));
    expect(fake.seen).to.deep.equal(["ssl-request", "tls"]);
    expect(e).to.be.instanceOf(DatabaseConfigurationError);
    expect((e as DatabaseConfigurationError).driverCode).to.equal("28P01");
  });

  for (const mode of ["verify-ca", "verify-full"]) {
    it(`${mode}: a self-signed certificate fails verification: DatabaseConfigurationError that says how to trust it or to use require`, async () => {
      const e = await startFailure(fake.url(mode));
      expect(fake.seen[0]).to.equal("ssl-request");
      expect(fake.seen).to.not.include("tls");
      expect(e).to.be.instanceOf(DatabaseConfigurationError);
      expect((e as DatabaseConfigurationError).driverCode).to.equal("DEPTH_ZERO_SELF_SIGNED_CERT");
      expect(e.message).to.include("failed verification").and.include("NODE_EXTRA_CA_CERTS").and.include("sslmode=require");
    });
  }

  for (const mode of ["disable", "prefer"]) {
    it(`${mode}: no TLS is asked for`, async () => {
      const e = await startFailure(fake.url(mode));
      expect(fake.seen).to.deep.equal(["plain"]);
      expect((e as DatabaseConfigurationError).driverCode).to.equal("28P01");
    });
  }
});

for (const kind of dbKinds().filter((k) => k === "postgres")) {
  describe(`sslmode against the test server on ${kind} (it has no TLS)`, () => {
    let url: URL;

    before(async () => {
      url = new URL(await ensureRunDatabase(kind));
      url.password = PASSWORD; // trust authentication ignores it; it must still never show
    });

    it("sslmode=require fails at start-up with a DatabaseConfigurationError that says the server does not accept TLS", async () => {
      const e = await startFailure(`${url.toString()}?sslmode=require`);
      expect(e).to.be.instanceOf(DatabaseConfigurationError);
      expect((e as DatabaseConfigurationError).driverCode).to.equal("PG_SSL_NOT_SUPPORTED");
      expect(e.message).to.include("does not accept TLS").and.include("sslmode=disable");
    });

    it("sslmode=disable connects, without TLS", async () => {
      const ds = await openDataSource(`${url.toString()}?sslmode=disable`, { poolSize: 1 });
      try {
        const rows = (await ds.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")) as { ssl: boolean }[];
        expect(rows[0].ssl).to.equal(false);
      } finally {
        await ds.destroy();
      }
    });
  });
}
