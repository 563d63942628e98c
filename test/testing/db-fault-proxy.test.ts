import { expect } from "chai";
import { createConnection as createMysqlConnection } from "mysql2/promise";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { DbFaultProxy } from "../../src/testing/db-fault-proxy";
import { dbKinds, SERVER_URL } from "../support/databases";

/**
 * The database fault proxy on its own: against a TCP echo server (any protocol), and in front of
 * MariaDB. Faults are real time; every wait here is a few hundred ms at most.
 */

async function echoServer(): Promise<Server> {
  const server = createServer((socket) => {
    socket.on("error", () => undefined);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

function portOf(server: Server): number {
  return (server.address() as { port: number }).port;
}

/** Connects; resolves with the socket, or with the error that ended it first. */
function connect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: "127.0.0.1", port }, () => resolve(socket));
    socket.once("error", reject);
  });
}

/** The next `bytes` bytes the socket receives, or "timeout" after `ms` (real time). */
function receive(socket: Socket, bytes: number, ms: number): Promise<string> {
  return new Promise((resolve) => {
    let got = "";
    const timer = setTimeout(() => {
      socket.off("data", onData);
      resolve("timeout");
    }, ms);
    const onData = (chunk: Buffer) => {
      got += chunk.toString();
      if (got.length >= bytes) {
        clearTimeout(timer);
        socket.off("data", onData);
        resolve(got);
      }
    };
    socket.on("data", onData);
  });
}

/** Resolves when the socket is closed by the other side (reset or end). */
function closed(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    socket.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
    socket.once("close", () => resolve("closed"));
  });
}

describe("testing kit: DbFaultProxy", function () {
  this.timeout(10_000);
  let echo: Server;
  let proxy: DbFaultProxy;
  const sockets: Socket[] = [];

  beforeEach(async () => {
    echo = await echoServer();
    proxy = await DbFaultProxy.start({ target: { host: "127.0.0.1", port: portOf(echo) } });
  });
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await proxy.close();
    await new Promise((resolve) => echo.close(resolve));
  });

  async function client(): Promise<Socket> {
    const socket = await connect(proxy.port);
    sockets.push(socket);
    return socket;
  }

  it("pass: forwards both ways", async () => {
    const socket = await client();
    socket.write("hello");
    expect(await receive(socket, 5, 2_000)).to.equal("hello");
    expect(proxy.stats).to.deep.equal({ open: 1, accepted: 1, refused: 0 });
  });

  it("cut(ms): resets open connections, resets new ones until the outage ends, then accepts again", async () => {
    const before = await client();
    const beforeClosed = closed(before);
    const started = Date.now();
    proxy.cut(300);
    expect(await beforeClosed).to.equal("ECONNRESET");
    const during = await client().then((s) => closed(s), (e: NodeJS.ErrnoException) => e.code);
    expect(during).to.be.oneOf(["ECONNRESET", "closed"]);
    expect(proxy.stats.refused).to.equal(1);
    await proxy.passing();
    expect(Date.now() - started).to.be.at.least(290);
    const after = await client();
    after.write("back");
    expect(await receive(after, 4, 2_000)).to.equal("back");
  });

  it("blackHole: nothing moves, connections stay open; pass() delivers what was held, in order", async () => {
    const socket = await client();
    proxy.blackHole();
    socket.write("one-");
    socket.write("two");
    expect(await receive(socket, 1, 200)).to.equal("timeout");
    const late = await client(); // new connections are accepted too, and hang
    late.write("x");
    expect(await receive(late, 1, 100)).to.equal("timeout");
    expect(socket.destroyed).to.equal(false);
    const delivered = receive(socket, 7, 2_000);
    proxy.pass();
    expect(await delivered).to.equal("one-two");
  });

  it("slow(ms): every chunk is delayed, both directions, order kept", async () => {
    const socket = await client();
    proxy.slow(100);
    const started = Date.now();
    socket.write("a");
    expect(await receive(socket, 1, 2_000)).to.equal("a");
    expect(Date.now() - started).to.be.at.least(190); // 100 ms there, 100 ms back
    for (const c of ["1", "2", "3"]) socket.write(c);
    expect(await receive(socket, 3, 2_000)).to.equal("123");
  });

  it("a URL target: proxy.url is the same URL on the proxy's port", async () => {
    const p = await DbFaultProxy.start({ target: "mariadb://user:pw@db.internal:3307/tokens?ssl=false" });
    try {
      expect(p.url).to.equal(`mariadb://user:pw@127.0.0.1:${p.port}/tokens?ssl=false`);
    } finally {
      await p.close();
    }
  });

  if (dbKinds().includes("mariadb")) {
    it("in front of MariaDB: a query passes; a cut ends the connection; a black hole makes a query hang", async () => {
      const p = await DbFaultProxy.start({ target: SERVER_URL });
      const url = new URL(p.url);
      const options = { host: url.hostname, port: Number(url.port), user: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
      try {
        const connection = await createMysqlConnection(options);
        connection.on("error", () => undefined);
        expect((await connection.query("SELECT 1 AS one"))[0]).to.deep.equal([{ one: 1 }]);
        p.blackHole();
        const hanging = connection.query("SELECT 2 AS two").then(() => "answered", (e: { code?: string }) => e.code ?? "error");
        const first = await Promise.race([hanging, new Promise((resolve) => setTimeout(() => resolve("hung"), 300))]);
        expect(first).to.equal("hung");
        p.cut(200);
        expect(await hanging).to.be.oneOf(["ECONNRESET", "PROTOCOL_CONNECTION_LOST"]);
        const refused = await createMysqlConnection(options).then((c) => (c.destroy(), "connected"), (e: { code?: string }) => e.code ?? "error");
        expect(refused).to.be.oneOf(["ECONNRESET", "PROTOCOL_CONNECTION_LOST"]);
        await p.passing();
        const again = await createMysqlConnection(options);
        expect((await again.query("SELECT 3 AS three"))[0]).to.deep.equal([{ three: 3 }]);
        await again.end();
      } finally {
        await p.close();
      }
    });
  }
});
