import { createConnection, type Connection, type RowDataPacket } from "mysql2/promise";
import { DataSource } from "typeorm";
import { dataSourceOptionsFromUrl } from "../../src/storage/data-source";
import { DbFaultProxy } from "../../src/testing/db-fault-proxy";
import { RUN_DATABASE, SERVER_URL, closeDataSource, openTestDataSource, runDatabaseUrl } from "../support/databases";
import { eventually } from "./harness";

/**
 * Database faults for the fault matrix, done to a live MariaDB the way production sees them:
 * a connection killed by `KILL` (DBA, failover, proxy timeout), and a row lock held by another session
 * (a long transaction, a migration) until the service's write gives up with ER_LOCK_WAIT_TIMEOUT;
 * and, through a DbFaultProxy, outages: the database unreachable, or the connection black-holed.
 */

/**
 * A one-connection DataSource on this run's MariaDB database, through a DbFaultProxy of its own.
 * The caller closes both (DataSource first).
 */
export async function openDataSourceBehindProxy(): Promise<{ proxy: DbFaultProxy; dataSource: DataSource }> {
  await closeDataSource(await openTestDataSource("mariadb", 1)); // makes sure the run's database exists
  const proxy = await DbFaultProxy.start({ target: runDatabaseUrl() });
  const dataSource = new DataSource(dataSourceOptionsFromUrl(proxy.url, { poolSize: 1 }));
  try {
    await dataSource.initialize();
  } catch (e) {
    await proxy.close();
    throw e;
  }
  return { proxy, dataSource };
}

function serverOptions(database?: string) {
  const url = new URL(SERVER_URL);
  return { host: url.hostname, port: Number(url.port || 3306), user: decodeURIComponent(url.username), password: decodeURIComponent(url.password), ...(database ? { database } : {}) };
}

/** A connection of our own, outside the service's pool. */
export function adminConnection(database?: string): Promise<Connection> {
  return createConnection(serverOptions(database));
}

/** The service's lock-wait timeout, in seconds (session-level, only on the service's own pool). */
export const SERVICE_LOCK_WAIT_TIMEOUT_S = 1;

/**
 * Gives every connection of the DataSource's pool a 1-second `innodb_lock_wait_timeout` (session
 * level: nothing global changes on a server other test runs share). The pool must have one connection
 * (poolSize 1): that one gets it now, replacements get it through the pool's "connection" event.
 */
export async function shortLockWaits(dataSource: DataSource): Promise<void> {
  const pool = (dataSource.driver as unknown as { pool?: { on(event: "connection", listener: (connection: { query(sql: string): unknown }) => void): void } }).pool;
  if (!pool) throw new Error("shortLockWaits: not a mysql2 pool");
  pool.on("connection", (connection) => connection.query(`SET SESSION innodb_lock_wait_timeout = ${SERVICE_LOCK_WAIT_TIMEOUT_S}`));
  await dataSource.query(`SET SESSION innodb_lock_wait_timeout = ${SERVICE_LOCK_WAIT_TIMEOUT_S}`);
  const [{ t }] = (await dataSource.query("SELECT @@SESSION.innodb_lock_wait_timeout AS t")) as Array<{ t: number | string }>;
  if (Number(t) !== SERVICE_LOCK_WAIT_TIMEOUT_S) throw new Error(`shortLockWaits: the session timeout is ${t}`);
}

/** The connection id the (single-connection) pool uses right now. */
export async function poolConnectionId(dataSource: DataSource): Promise<number> {
  const [{ id }] = (await dataSource.query("SELECT CONNECTION_ID() AS id")) as Array<{ id: number | string }>;
  return Number(id);
}

interface ProcessRow extends RowDataPacket {
  ID: number;
  INFO: string | null;
}

async function processInfo(admin: Connection, id: number): Promise<ProcessRow | undefined> {
  const [rows] = await admin.query<ProcessRow[]>("SELECT ID, INFO FROM information_schema.PROCESSLIST WHERE ID = ?", [id]);
  return rows[0];
}

/** KILLs a connection and waits (bounded) until the server no longer lists it. */
export async function killConnection(admin: Connection, id: number): Promise<void> {
  await admin.query(`KILL CONNECTION ${Number(id)}`).catch((e: { errno?: number }) => {
    if (e.errno !== 1094) throw e; // ER_NO_SUCH_THREAD: already gone
  });
  await eventually(`connection ${id} to disappear`, async () => ((await processInfo(admin, id)) ? undefined : true));
}

/** Waits (bounded) until connection `id` runs an UPDATE on the token table (it is blocked on our lock); returns its text. */
export function blockedWrite(admin: Connection, id: number, timeoutMs = 10_000): Promise<string> {
  return eventually(
    `connection ${id} to block in an UPDATE`,
    async () => {
      const info = (await processInfo(admin, id))?.INFO ?? "";
      return /^\s*UPDATE\s+scm_token_entry/i.test(info) ? info : undefined;
    },
    timeoutMs,
  );
}

/** Waits (bounded) until connection `id` no longer runs `statement` (it timed out, or is gone). */
export function statementEnded(admin: Connection, id: number, statement: string, timeoutMs = 10_000): Promise<true> {
  return eventually(`connection ${id} to leave its blocked statement`, async () => ((await processInfo(admin, id))?.INFO === statement ? undefined : true), timeoutMs);
}

/** Another session's open transaction holding the row's lock (`SELECT … FOR UPDATE`) until released. */
export class RowLock {
  private constructor(private readonly connection: Connection) {}

  static async take(entryId: string): Promise<RowLock> {
    const connection = await adminConnection(RUN_DATABASE);
    try {
      await connection.query("START TRANSACTION");
      const [rows] = await connection.query<RowDataPacket[]>("SELECT id FROM scm_token_entry WHERE id = ? FOR UPDATE", [entryId]);
      if (rows.length !== 1) throw new Error("RowLock: no such row");
      return new RowLock(connection);
    } catch (e) {
      await connection.end().catch(() => undefined);
      throw e;
    }
  }

  /** Rolls back and disconnects. Idempotent. */
  private released: Promise<void> | undefined;
  release(): Promise<void> {
    this.released ??= this.connection
      .query("ROLLBACK")
      .then(() => undefined, () => undefined)
      .finally(() => this.connection.end().catch(() => undefined));
    return this.released;
  }
}
