import { randomBytes } from "node:crypto";
import type { TokenService } from "../../src/token-service";
import type { TokenCrypto } from "../../src/token-crypto";
import type { SetupSql } from "./bench-target";

/**
 * Test data. Rows the benchmark reads go in through `storeToken` (properly encrypted: ciphertexts
 * are bound to user and host); filler rows that are never read go in with multi-row INSERTs of a
 * placeholder ciphertext of realistic length.
 *
 * User ids sort so that the 1000 readable users are spread evenly over the (userId, host) index:
 * readable user k is `u<kkkk>-0000000`, filler row j is `u<j mod 1000>-<j div 1000 + 1>`.
 */

export const READABLE_USERS = 1000;

export function readableUserId(k: number): string {
  return `u${pad(k % READABLE_USERS, 4)}-${pad(0, 7)}`;
}

function fillerUserId(j: number): string {
  return `u${pad(j % READABLE_USERS, 4)}-${pad(Math.floor(j / READABLE_USERS) + 1, 7)}`;
}

/** Access token plaintext of a readable user (the benchmark checks every hand-out against it). */
export function accessTokenOf(userId: string): string {
  return `bench-access-token-${userId}-${"x".repeat(64)}`;
}

/** Stores `userIds` through the library, `parallel` at a time, valid for 24 h. */
export async function storeReadable(service: TokenService, host: string, userIds: string[], parallel = 10): Promise<void> {
  const expiryDate = new Date(Date.now() + 24 * 3600_000);
  let next = 0;
  const worker = async () => {
    while (next < userIds.length) {
      const userId = userIds[next++];
      await service.storeToken(userId, host, { value: accessTokenOf(userId), refreshToken: `bench-refresh-${userId}`, expiryDate, scopes: ["REPO_READ", "REPO_WRITE"] });
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

/** Sets every row's reservation (undefined = NULL): the "reserved"/"unreserved" cases of the hot path. */
export async function setReservations(pool: SetupSql, until: Date | undefined): Promise<void> {
  const u = until ? sqlDate(until.getTime()) : null;
  await pool.query("UPDATE scm_token_entry SET reservedUntilDate = ?, pinnedUntilDate = ? WHERE userId LIKE 'u%' OR userId = 'hot-user'", [u, u]);
}

export interface BulkKind {
  /** "filler": live 24 h tokens nobody reads; "dead": expired, no refresh token (what reapExpired deletes). */
  kind: "filler" | "dead";
  /** Row indexes [from, to). */
  from: number;
  to: number;
}

const ROWS_PER_INSERT = 2000;
const PLACEHOLDER = `v1:bench:${randomBytes(12).toString("base64url")}:${randomBytes(16).toString("base64url")}:${randomBytes(110).toString("base64url")}`;

/**
 * Multi-row INSERTs of `ROWS_PER_INSERT` rows, `parallel` statements in flight. Ids are ascending
 * (appends to the clustered index). Calls `progress` after each statement; returns the rows inserted.
 */
export async function bulkInsert(pool: SetupSql, host: string, spec: BulkKind, parallel = 2, progress?: (rows: number) => void): Promise<number> {
  const now = Date.now();
  const live = sqlDate(now + 24 * 3600_000);
  const expired = sqlDate(now - 3600_000);
  const created = sqlDate(now);
  let next = spec.from;
  let inserted = 0;
  const worker = async () => {
    while (next < spec.to) {
      const from = next;
      const to = Math.min(spec.to, from + ROWS_PER_INSERT);
      next = to;
      const values: string[] = [];
      for (let j = from; j < to; j++) {
        if (spec.kind === "filler") {
          values.push(`('${rowId(1, j)}','${fillerUserId(j)}','${host}','${PLACEHOLDER}','${PLACEHOLDER}','REPO_READ REPO_WRITE','whenPossible','${live}',1,'${created}','${created}')`);
        } else {
          values.push(`('${rowId(2, j)}','dead-${pad(j, 8)}','${host}','${PLACEHOLDER}',NULL,'REPO_READ','whenPossible','${expired}',1,'${created}','${created}')`);
        }
      }
      await pool.query(`${insertInto(pool)} VALUES ${values.join(",")}`);
      inserted += to - from;
      progress?.(inserted);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return inserted;
}

export async function countRows(pool: SetupSql): Promise<number> {
  const rows = await pool.query("SELECT COUNT(*) AS n FROM scm_token_entry");
  return Number(rows[0].n);
}

/** The bulk INSERT's head, its column names spelled for the server (too large a statement to translate). */
function insertInto(pool: SetupSql): string {
  const columns = ["id", "userId", "host", "accessToken", "refreshToken", "scopes", "reuse", "expiryDate", "version", "createdAt", "updatedAt"];
  return `INSERT INTO scm_token_entry (${columns.map((c) => pool.quoteName(c)).join(", ")})`;
}

/** UUID-shaped, ascending: 0000000k-0000-4000-8000-<12 digits>. */
function rowId(kind: number, j: number): string {
  return `0000000${kind}-0000-4000-8000-${pad(j, 12)}`;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

function sqlDate(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace("Z", "");
}

/** Bulk readable user k (k < 10M): `b<7 digits>`, sorting after the fixture's users. */
export function bulkUserId(k: number): string {
  return `b${pad(k, 7)}`;
}

/**
 * Readable rows `bulkUserId(from … to-1)` with real ciphertexts (encrypted as the library does, bound
 * to user and host), valid for 24 h, unreserved: multi-row INSERTs, `parallel` in flight.
 */
export async function bulkReadable(pool: SetupSql, host: string, crypto: TokenCrypto, from: number, to: number, parallel = 2, progress?: (rows: number) => void): Promise<number> {
  const now = Date.now();
  const live = sqlDate(now + 24 * 3600_000);
  const created = sqlDate(now);
  let next = from;
  let inserted = 0;
  const worker = async () => {
    while (next < to) {
      const a = next;
      const b = Math.min(to, a + ROWS_PER_INSERT);
      next = b;
      const values: string[] = [];
      for (let k = a; k < b; k++) {
        const userId = bulkUserId(k);
        const access = crypto.encrypt("access", userId, host, accessTokenOf(userId));
        values.push(`('${rowId(3, k)}','${userId}','${host}','${access}','${PLACEHOLDER}','REPO_READ REPO_WRITE','whenPossible','${live}',1,'${created}','${created}')`);
      }
      await pool.query(`${insertInto(pool)} VALUES ${values.join(",")}`);
      inserted += b - a;
      progress?.(inserted);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return inserted;
}

/** A seeded permutation of [from, to) (mulberry32 + Fisher–Yates): each index once, in random order. */
export function shuffledRange(from: number, to: number, seed: number): Int32Array {
  const out = new Int32Array(to - from);
  for (let i = 0; i < out.length; i++) out[i] = from + i;
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const x = out[i];
    out[i] = out[j];
    out[j] = x;
  }
  return out;
}
