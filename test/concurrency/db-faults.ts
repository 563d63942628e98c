import { createConnection, type Connection, type RowDataPacket } from "mysql2/promise";
import { Client } from "pg";
import { DataSource } from "typeorm";
import { dataSourceOptionsFromUrl } from "../../src/storage/data-source";
import { DbFaultProxy } from "../../src/testing/db-fault-proxy";
import { POSTGRES_SERVER_URL, RUN_DATABASE, SERVER_URL, closeDataSource, openTestDataSource, runDatabaseUrl, type ServerKind } from "../support/databases";
import { eventually } from "./harness";

/**
 * Database faults for the fault matrix, done to a live server the way production sees them:
 * a connection killed (MariaDB `KILL`, PostgreSQL `pg_terminate_backend`: DBA, failover, proxy
 * timeout), and a row lock held by another session (a long transaction, a migration) until the
 * service's write gives up (ER_LOCK_WAIT_TIMEOUT / lock_not_available); and, through a DbFaultProxy,
 * outages: the database unreachable, or the connection black-holed.
 */

/**
 * A one-connection DataSource on this run's database of `kind`, through a DbFaultProxy of its own.
 * The caller closes both (DataSource first).
 */
export async function openDataSourceBehindProxy(kind: ServerKind = "mariadb"): Promise<{ proxy: DbFaultProxy; dataSource: DataSource }> {
  await closeDataSource(await openTestDataSource(kind, 1)); // makes sure the run's database exists
  const proxy = await DbFaultProxy.start({ target: runDatabaseUrl(kind) });
  const dataSource = new DataSource(dataSourceOptionsFromUrl(proxy.url, { poolSize: 1 }));
  try {
    await dataSource.initialize();
  } catch (e) {
    await proxy.close();
    throw e;
  }
  return { proxy, dataSource };
}

/** A session of our own on the server, outside the service's pool: sees, kills and locks. */
export interface DbAdmin {
  readonly kind: ServerKind;
  /** The text of the statement session `id` runs right now; undefined when it runs none or is gone. */
  runningStatement(id: number): Promise<string | undefined>;
  /** True while session `id` exists. */
  exists(id: number): Promise<boolean>;
  /** Ends session `id` (already gone is fine). */
  kill(id: number): Promise<void>;
  end(): Promise<void>;
}

function mysqlOptions(database?: string) {
  const url = new URL(SERVER_URL);
  return { host: url.hostname, port: Number(url.port || 3306), user: decodeURIComponent(url.username), password: decodeURIComponent(url.password), ...(database ? { database } : {}) };
}

interface ProcessRow extends RowDataPacket {
  ID: number;
  INFO: string | null;
}

class MysqlAdmin implements DbAdmin {
  readonly kind = "mariadb" as const;
  constructor(private readonly connection: Connection) {}

  private async process(id: number): Promise<ProcessRow | undefined> {
    const [rows] = await this.connection.query<ProcessRow[]>("SELECT ID, INFO FROM information_schema.PROCESSLIST WHERE ID = ?", [id]);
    return rows[0];
  }
  async runningStatement(id: number) {
    return (await this.process(id))?.INFO ?? undefined;
  }
  async exists(id: number) {
    return (await this.process(id)) !== undefined;
  }
  async kill(id: number) {
    await this.connection.query(`KILL CONNECTION ${Number(id)}`).catch((e: { errno?: number }) => {
      if (e.errno !== 1094) throw e; // ER_NO_SUCH_THREAD: already gone
    });
  }
  end() {
    return this.connection.end();
  }
}

class PostgresAdmin implements DbAdmin {
  readonly kind = "postgres" as const;
  constructor(private readonly client: Client) {}

  private async activity(id: number): Promise<{ state: string | null; query: string | null } | undefined> {
    return (await this.client.query("SELECT state, query FROM pg_stat_activity WHERE pid = $1", [id])).rows[0] as { state: string | null; query: string | null } | undefined;
  }
  async runningStatement(id: number) {
    const a = await this.activity(id);
    return a?.state === "active" ? (a.query ?? undefined) : undefined;
  }
  async exists(id: number) {
    return (await this.activity(id)) !== undefined;
  }
  async kill(id: number) {
    await this.client.query("SELECT pg_terminate_backend($1)", [id]);
  }
  end() {
    return this.client.end();
  }
}

/** An admin session on the server of `kind` (on this run's database for PostgreSQL, whose sessions belong to one). */
export async function adminConnection(kind: ServerKind = "mariadb"): Promise<DbAdmin> {
  if (kind === "postgres") {
    const client = new Client({ connectionString: `${POSTGRES_SERVER_URL}/${RUN_DATABASE}` });
    await client.connect();
    return new PostgresAdmin(client);
  }
  return new MysqlAdmin(await createConnection(mysqlOptions()));
}

/** The service's lock-wait timeout, in seconds (session-level, only on the service's own pool). */
export const SERVICE_LOCK_WAIT_TIMEOUT_S = 1;

/**
 * Gives every connection of the DataSource's pool a 1-second lock wait (MariaDB
 * `innodb_lock_wait_timeout`, PostgreSQL `lock_timeout`; session level: nothing global changes on a
 * server other test runs share). The pool must have one connection (poolSize 1): that one gets it
 * now, replacements get it through the pool's "connection"/"connect" event.
 */
export async function shortLockWaits(dataSource: DataSource): Promise<void> {
  if (dataSource.options.type === "postgres") {
    const pool = (dataSource.driver as unknown as { master?: { on(event: "connect", listener: (client: { query(sql: string): Promise<unknown> }) => void): void } }).master;
    if (!pool) throw new Error("shortLockWaits: not a pg pool");
    const set = `SET lock_timeout = '${SERVICE_LOCK_WAIT_TIMEOUT_S}s'`;
    pool.on("connect", (client) => void client.query(set).catch(() => undefined));
    await dataSource.query(set);
    const [{ lock_timeout: t }] = (await dataSource.query("SHOW lock_timeout")) as Array<{ lock_timeout: string }>;
    if (t !== `${SERVICE_LOCK_WAIT_TIMEOUT_S}s`) throw new Error(`shortLockWaits: the session lock_timeout is ${t}`);
    return;
  }
  const pool = (dataSource.driver as unknown as { pool?: { on(event: "connection", listener: (connection: { query(sql: string): unknown }) => void): void } }).pool;
  if (!pool) throw new Error("shortLockWaits: not a mysql2 pool");
  pool.on("connection", (connection) => connection.query(`SET SESSION innodb_lock_wait_timeout = ${SERVICE_LOCK_WAIT_TIMEOUT_S}`));
  await dataSource.query(`SET SESSION innodb_lock_wait_timeout = ${SERVICE_LOCK_WAIT_TIMEOUT_S}`);
  const [{ t }] = (await dataSource.query("SELECT @@SESSION.innodb_lock_wait_timeout AS t")) as Array<{ t: number | string }>;
  if (Number(t) !== SERVICE_LOCK_WAIT_TIMEOUT_S) throw new Error(`shortLockWaits: the session timeout is ${t}`);
}

/** The session id the (single-connection) pool uses right now. */
export async function poolConnectionId(dataSource: DataSource): Promise<number> {
  const sql = dataSource.options.type === "postgres" ? "SELECT pg_backend_pid() AS id" : "SELECT CONNECTION_ID() AS id";
  const [{ id }] = (await dataSource.query(sql)) as Array<{ id: number | string }>;
  return Number(id);
}

/** Ends a session and waits (bounded) until the server no longer lists it. */
export async function killConnection(admin: DbAdmin, id: number): Promise<void> {
  await admin.kill(id);
  await eventually(`connection ${id} to disappear`, async () => ((await admin.exists(id)) ? undefined : true));
}

/** Waits (bounded) until session `id` runs an UPDATE on the token table (it is blocked on our lock); returns its text. */
export function blockedWrite(admin: DbAdmin, id: number, timeoutMs = 10_000): Promise<string> {
  return eventually(
    `connection ${id} to block in an UPDATE`,
    async () => {
      const info = (await admin.runningStatement(id)) ?? "";
      return /^\s*UPDATE\s+scm_token_entry/i.test(info) ? info : undefined;
    },
    timeoutMs,
  );
}

/** Waits (bounded) until session `id` no longer runs `statement` (it timed out, or is gone). */
export function statementEnded(admin: DbAdmin, id: number, statement: string, timeoutMs = 10_000): Promise<true> {
  return eventually(`connection ${id} to leave its blocked statement`, async () => ((await admin.runningStatement(id)) === statement ? undefined : true), timeoutMs);
}

/** Another session's open transaction holding the row's lock (`SELECT … FOR UPDATE`) until released. */
export class RowLock {
  private constructor(private readonly run: (sql: string) => Promise<unknown>, private readonly close: () => Promise<void>) {}

  static async take(entryId: string, kind: ServerKind = "mariadb"): Promise<RowLock> {
    if (kind === "postgres") {
      const client = new Client({ connectionString: `${POSTGRES_SERVER_URL}/${RUN_DATABASE}` });
      await client.connect();
      try {
        await client.query("BEGIN");
        const { rows } = await client.query("SELECT id FROM scm_token_entry WHERE id = $1 FOR UPDATE", [entryId]);
        if (rows.length !== 1) throw new Error("RowLock: no such row");
        return new RowLock((sql) => client.query(sql), () => client.end());
      } catch (e) {
        await client.end().catch(() => undefined);
        throw e;
      }
    }
    const connection = await createConnection(mysqlOptions(RUN_DATABASE));
    try {
      await connection.query("START TRANSACTION");
      const [rows] = await connection.query<RowDataPacket[]>("SELECT id FROM scm_token_entry WHERE id = ? FOR UPDATE", [entryId]);
      if (rows.length !== 1) throw new Error("RowLock: no such row");
      return new RowLock((sql) => connection.query(sql), () => connection.end());
    } catch (e) {
      await connection.end().catch(() => undefined);
      throw e;
    }
  }

  /** Rolls back and disconnects. Idempotent. */
  private released: Promise<void> | undefined;
  release(): Promise<void> {
    this.released ??= this.run("ROLLBACK")
      .then(() => undefined, () => undefined)
      .finally(() => this.close().catch(() => undefined));
    return this.released;
  }
}
