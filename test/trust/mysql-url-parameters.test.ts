import { Duplex } from "node:stream";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { TLSSocket } from "node:tls";
import { expect } from "chai";
import { createTokenService } from "../../src/create-token-service";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import { UnsupportedUrlParameterError, openDataSource } from "../../src/storage/data-source";
import { DatabaseConfigurationError } from "../../src/storage/startup-errors";
import { SERVER_URL, dbKinds, ensureRunDatabase } from "../support/databases";
import { selfSignedCert } from "../support/self-signed-cert";
import { urlChecks } from "../support/url-checks";

const PASSWORD = "my-Tls-secret-7";

const { sslOf, refusal, startFailure } = urlChecks(PASSWORD);

describe("mysql:// and mariadb:// URLs: ?sslmode= as on postgres://, and no other query parameter (no server needed)", () => {
  for (const scheme of ["mysql", "mariadb"]) {
    it(`${scheme}://: disable, allow and prefer connect without TLS; require encrypts unverified; verify-ca checks the chain; verify-full also the host name`, () => {
      for (const mode of ["disable", "allow", "prefer"]) expect(sslOf(`${scheme}://app@db/tokens?sslmode=${mode}`), mode).to.equal(false);
      expect(sslOf(`${scheme}://app@db/tokens`)).to.equal("absent");
      expect(sslOf(`${scheme}://app@db/tokens?sslmode=require`)).to.deep.equal({ rejectUnauthorized: false });
      // mysql2 checks the host name only with verifyIdentity.
      expect(sslOf(`${scheme}://app@db/tokens?sslmode=verify-ca`)).to.deep.equal({ rejectUnauthorized: true });
      expect(sslOf(`${scheme}://app@db/tokens?sslmode=verify-full`)).to.deep.equal({ rejectUnauthorized: true, verifyIdentity: true });
    });

    it(`${scheme}://: any other sslmode, or sslmode twice, is a ConfigurationError naming the allowed values`, () => {
      for (const mode of ["", "REQUIRED", "true", "verify_identity"]) {
        expect(refusal(`${scheme}://app:${PASSWORD}@db/tokens?sslmode=${mode}`).message, mode).to.include("sslmode").and.include("disable|allow|prefer|require|verify-ca|verify-full");
      }
      expect(refusal(`${scheme}://app@db/tokens?sslmode=disable&sslmode=require`).message).to.include("sslmode is given 2 times");
    });
  }

  it("any other query parameter, on every server scheme, is refused by name (never its value), saying how to pass driver settings", () => {
    for (const scheme of ["mysql", "mariadb", "postgres", "postgresql"]) {
      for (const name of ["charset", "ssl", "ssl-mode", "connectTimeout", "password", "timezone"]) {
        const e = refusal(`${scheme}://app@db/tokens?${name}=${PASSWORD}`);
        expect(e, `${scheme} ${name}`).to.be.instanceOf(UnsupportedUrlParameterError);
        expect((e as UnsupportedUrlParameterError).parameter).to.equal(name);
        expect(e.message).to.include(`the query parameter "${name}" is not supported on ${scheme}:// URLs`).and.include("sslmode=").and.include("pass it as the dataSource option");
      }
    }
    expect(refusal(`mysql://app@db/tokens?${"x".repeat(100)}=1`).message).to.include(`"${"x".repeat(40)}"`).and.not.include("x".repeat(41));
  });

  it("createTokenService({ databaseUrl }) refuses a MySQL URL's parameter before connecting", async () => {
    const error = await createTokenService({
      databaseUrl: `mysql://app:${PASSWORD}@127.0.0.1:1/tokens?charset=utf8mb4`,
      providers: [new BitbucketServerProvider({ host: "bitbucket.example.com", baseUrl: "http://127.0.0.1:9", clientId: "c", clientSecret: "s" })],
      encryptionKeys: [{ id: "k1", key: Buffer.alloc(32, 1).toString("base64") }],
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(UnsupportedUrlParameterError);
    expect((error as Error).message).to.include('"charset"').and.not.include(PASSWORD);
  });
});

/** One MySQL protocol packet: 3-byte length, sequence id, payload. */
function packet(sequence: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUIntLE(payload.length, 0, 3);
  head.writeUInt8(sequence, 3);
  return Buffer.concat([head, payload]);
}

/** The server's greeting (Handshake v10), offering TLS (CLIENT_SSL) and mysql_native_password. */
function greeting(): Buffer {
  // LONG_PASSWORD | CONNECT_WITH_DB | PROTOCOL_41 | SSL | TRANSACTIONS | SECURE_CONNECTION | PLUGIN_AUTH
  const capabilities = 0x1 | 0x8 | 0x200 | 0x800 | 0x2000 | 0x8000 | 0x80000;
  const u16 = (n: number) => Buffer.from([n & 0xff, (n >> 8) & 0xff]);
  const connectionId = Buffer.alloc(4);
  connectionId.writeUInt32LE(7);
  return packet(
    0,
    Buffer.concat([
      Buffer.from([10]),
      Buffer.from("8.0.0-stand-in\0"),
      connectionId,
      Buffer.alloc(8, 0x61),
      Buffer.from([0]),
      u16(capabilities & 0xffff),
      Buffer.from([33]),
      u16(2),
      u16(capabilities >>> 16),
      Buffer.from([21]),
      Buffer.alloc(10),
      Buffer.alloc(12, 0x62),
      Buffer.from([0]),
      Buffer.from("mysql_native_password\0"),
    ]),
  );
}

/** ERR 1045 (28000), as a server refusing the password sends it. */
function accessDenied(sequence: number): Buffer {
  const code = Buffer.alloc(2);
  code.writeUInt16LE(1045);
  return packet(sequence, Buffer.concat([Buffer.from([0xff]), code, Buffer.from("#28000Access denied for user 'app'@'localhost' (using password: YES)")]));
}

/**
 * A stand-in MySQL server: greets offering TLS; a client's SSLRequest (a 32-byte packet) gets a TLS
 * session with a self-signed certificate, then the login is refused (1045); a client that logs in
 * without TLS is refused the same way. It records what each connection did.
 */
class FakeMysqlTlsServer {
  private constructor(
    /** What each connection did: "ssl-request", "tls" (handshake done), "plain". */
    readonly seen: string[],
    private readonly server: Server,
  ) {}

  static async start(): Promise<FakeMysqlTlsServer> {
    const { key, cert } = selfSignedCert();
    const seen: string[] = [];
    const server = createServer((socket: Socket) => {
      socket.on("error", () => undefined);
      socket.write(greeting());
      socket.once("data", (first) => {
        if (first.readUIntLE(0, 3) !== 32) {
          seen.push("plain");
          socket.end(accessDenied(first.readUInt8(3) + 1));
          return;
        }
        seen.push("ssl-request");
        // The client starts TLS right after its SSLRequest: its ClientHello may be in the same chunk.
        const carrier = new Duplex({ read: () => undefined, write: (chunk, _encoding, done) => void socket.write(chunk, done) });
        carrier.push(first.subarray(36));
        socket.on("data", (chunk) => carrier.push(chunk));
        socket.on("end", () => carrier.push(null));
        const secure = new TLSSocket(carrier, { isServer: true, key, cert });
        secure.on("error", () => socket.destroy());
        secure.once("secure", () => seen.push("tls"));
        secure.once("data", (login: Buffer) => {
          secure.write(accessDenied(login.readUInt8(3) + 1));
          socket.end();
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return new FakeMysqlTlsServer(seen, server);
  }

  url(mode: string): string {
    return `mysql://app:${PASSWORD}@127.0.0.1:${(this.server.address() as AddressInfo).port}/tokens?sslmode=${mode}`;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe("mysql:// URLs: what each sslmode does on the wire (a stand-in MySQL server with TLS, no MySQL needed)", () => {
  let fake: FakeMysqlTlsServer;

  before(async () => {
    fake = await FakeMysqlTlsServer.start();
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
    expect((e as DatabaseConfigurationError).driverCode).to.equal("ER_ACCESS_DENIED_ERROR");
  });

  for (const mode of ["verify-ca", "verify-full"]) {
    it(`${mode}: a self-signed certificate fails verification: DatabaseConfigurationError that says how to trust it or to use require`, async () => {
      const e = await startFailure(fake.url(mode));
      expect(fake.seen).to.deep.equal(["ssl-request"]);
      expect(e).to.be.instanceOf(DatabaseConfigurationError);
      expect((e as DatabaseConfigurationError).driverCode).to.equal("DEPTH_ZERO_SELF_SIGNED_CERT");
      expect(e.message).to.include("failed verification").and.include("NODE_EXTRA_CA_CERTS").and.include("sslmode=require");
    });
  }

  for (const mode of ["disable", "prefer"]) {
    it(`${mode}: no TLS is asked for`, async () => {
      const e = await startFailure(fake.url(mode));
      expect(fake.seen).to.deep.equal(["plain"]);
      expect((e as DatabaseConfigurationError).driverCode).to.equal("ER_ACCESS_DENIED_ERROR");
    });
  }
});

for (const kind of dbKinds().filter((k) => k === "mariadb")) {
  describe(`sslmode against the test server on ${kind} (it has no TLS)`, () => {
    let url: URL;

    before(async () => {
      url = new URL(await ensureRunDatabase(kind));
    });

    it("sslmode=require fails at start-up with a DatabaseConfigurationError that says the server does not accept TLS", async () => {
      const withPassword = new URL(SERVER_URL);
      withPassword.password = PASSWORD; // root has no password here: refused at the TLS step before any login, and it must never show
      withPassword.pathname = url.pathname;
      const e = await startFailure(`${withPassword.toString()}?sslmode=require`);
      expect(e).to.be.instanceOf(DatabaseConfigurationError);
      expect((e as DatabaseConfigurationError).driverCode).to.equal("HANDSHAKE_NO_SSL_SUPPORT");
      expect(e.message).to.include("does not accept TLS").and.include("sslmode=disable");
    });

    it("sslmode=disable connects, without TLS", async () => {
      const ds = await openDataSource(`${url.toString()}?sslmode=disable`, { poolSize: 1 });
      try {
        const rows = (await ds.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'")) as { Value: string }[];
        expect(rows[0].Value).to.equal("");
      } finally {
        await ds.destroy();
      }
    });
  });
}
