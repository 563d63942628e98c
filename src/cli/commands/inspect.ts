import type { Command } from "commander";
import { KeyRing } from "../../crypto/key-ring";
import { TokenStore, type StoredEntry } from "../../storage/token-store";
import { failure } from "../cli-error";
import { writeLine } from "../cli-io";
import { newCommand, relative, type CliContext } from "../command-kit";
import { DATABASE_URL_HELP, resolveDatabaseUrl, withCliDatabase } from "../database";

/** What `inspect` shows: the entry's metadata. Never a token: ciphertexts are reduced to their key ids. */
export interface EntryMetadata {
  id: string;
  userId: string;
  host: string;
  version: number;
  scopes: string[];
  username: string | null;
  reuse: string;
  refreshable: boolean;
  expiryDate: string | null;
  /**
   * Until when the token is held: the later of reservedUntilDate and the live holds' end, as a refresh
   * that must not break holders sees it (never beyond the expiry); null when nothing holds it now.
   */
  heldUntil: string | null;
  /** Until when non-releasable hand-outs (and the requester of the last refresh) hold it; releasable ones are in liveHolds. */
  reservedUntilDate: string | null;
  pinnedUntilDate: string | null;
  reservationSeq: number;
  drainingSince: string | null;
  refreshLease: { owner: string | null; until: string | null } | null;
  /** Releasable hand-outs still holding the current token (released or ended ones are not counted). */
  liveHolds: { count: number; latestUntil: string | null };
  reauthorizationReason: string | null;
  keyIds: { accessToken: string | null; refreshToken: string | null };
}

/** The metadata of a stored entry; the token columns contribute only the ids of the keys they are encrypted with. */
export function entryMetadata(entry: StoredEntry, holds: { count: number; latestUntil?: Date } = { count: 0 }, now = new Date()): EntryMetadata {
  const iso = (d: Date | undefined) => (d ? d.toISOString() : null);
  return {
    id: entry.id,
    userId: entry.userId,
    host: entry.host,
    version: entry.version,
    scopes: entry.scopes,
    username: entry.username ?? null,
    reuse: entry.reuse,
    refreshable: entry.refreshTokenCiphertext !== undefined,
    expiryDate: iso(entry.expiryDate),
    heldUntil: iso(heldUntil(entry, holds.latestUntil, now)),
    reservedUntilDate: iso(entry.reservedUntilDate),
    pinnedUntilDate: iso(entry.pinnedUntilDate),
    reservationSeq: entry.reservationSeq,
    drainingSince: iso(entry.drainingSince),
    refreshLease: entry.refreshLeaseOwner || entry.refreshLeaseUntil ? { owner: entry.refreshLeaseOwner ?? null, until: iso(entry.refreshLeaseUntil) } : null,
    liveHolds: { count: holds.count, latestUntil: iso(holds.latestUntil) },
    reauthorizationReason: entry.reauthorizationReason ?? null,
    keyIds: {
      accessToken: KeyRing.keyIdOf(entry.accessTokenCiphertext) ?? null,
      refreshToken: entry.refreshTokenCiphertext === undefined ? null : (KeyRing.keyIdOf(entry.refreshTokenCiphertext) ?? null),
    },
  };
}

/** The later of reservedUntilDate and the latest live hold, capped at the expiry (a hold never outlives the token); undefined when not in the future. */
function heldUntil(entry: StoredEntry, latestHold: Date | undefined, now: Date): Date | undefined {
  let end = Math.max(entry.reservedUntilDate?.getTime() ?? 0, latestHold?.getTime() ?? 0);
  if (entry.expiryDate) end = Math.min(end, entry.expiryDate.getTime());
  return end > now.getTime() ? new Date(end) : undefined;
}

/**
 * `scm-token-service inspect <userId> <host>`: what the service knows about one stored token —
 * expiry, reservation, lease, drain, re-authorisation mark, scopes, version, key ids — for support
 * questions like "why did this workspace wait?" or "why must this user reconnect?".
 */
export function inspectCommand(context: CliContext): Command {
  const { io } = context;
  return newCommand("inspect", "show the metadata of one stored token entry (never the token)", [
    "scm-token-service inspect user-1 bitbucket.example.com --database-url mysql://app:secret@db.internal:3306/tokens",
    "scm-token-service inspect user-1 gitlab.com --json | jq .reservedUntilDate",
  ])
    .argument("<userId>", "the user id the token is stored under")
    .argument("<host>", "the SCM host, e.g. bitbucket.example.com (case-insensitive)")
    .option("--database-url <url>", DATABASE_URL_HELP)
    .option("--json", "print one JSON object (dates as ISO 8601 strings, null when unset)")
    .action(async (userId: string, host: string, options: { databaseUrl?: string; json?: boolean }) => {
      const url = resolveDatabaseUrl(options.databaseUrl, io.env);
      const normalizedHost = host.trim().toLowerCase();
      await withCliDatabase(url, { requireMigrated: true }, async (dataSource) => {
        const store = new TokenStore(dataSource);
        const entry = await store.find(userId, normalizedHost);
        if (!entry) throw failure(`no token is stored for user ${JSON.stringify(userId)} at ${normalizedHost}; check both (user ids are case-sensitive)`);
        const now = new Date();
        const metadata = entryMetadata(entry, await store.liveHolds(entry.id, entry.version, now), now);
        if (options.json) writeLine(io.stdout, JSON.stringify(metadata, null, 2));
        else for (const line of describe(metadata, now)) writeLine(io.stdout, line);
      });
    });
}

function describe(m: EntryMetadata, now: Date): string[] {
  const when = (iso: string | null, none: string) => (iso ? `${iso} (${relative(new Date(iso), now)})` : none);
  const rows: [string, string][] = [
    ["entry", `${m.id} (version ${m.version}, reservation seq ${m.reservationSeq})`],
    ["user / host", `${m.userId} @ ${m.host}`],
    ["username", m.username ?? "-"],
    ["scopes", m.scopes.length ? m.scopes.join(" ") : "(none)"],
    ["reuse", m.reuse],
    ["expires", when(m.expiryDate, "never")],
    ["refreshable", m.refreshable ? "yes (has a refresh token)" : "no (no refresh token)"],
    ["held until", m.heldUntil ? `${when(m.heldUntil, "")} (the later of the reservation and the live holds)` : "not held"],
    ["reserved until", m.reservedUntilDate && new Date(m.reservedUntilDate) > now ? `${when(m.reservedUntilDate, "")} (non-releasable hand-outs)` : `not reserved${m.reservedUntilDate ? ` (last reservation ended ${m.reservedUntilDate})` : ""}`],
    ["pinned until", when(m.pinnedUntilDate, "-")],
    ["live holds", m.liveHolds.count ? `${m.liveHolds.count} releasable hand-out(s), the last until ${when(m.liveHolds.latestUntil, "?")}` : "none"],
    ["refresh lease", m.refreshLease ? `${m.refreshLease.owner ?? "?"} until ${when(m.refreshLease.until, "?")}` : "free"],
    ["draining", m.drainingSince ? `since ${when(m.drainingSince, "")} (a forced refresh waits for holders)` : "no"],
    ["re-authorisation", m.reauthorizationReason ? `required (${m.reauthorizationReason}): the user must connect ${m.host} again` : "not required"],
    ["key ids", `access token: ${m.keyIds.accessToken ?? "(unknown format)"}, refresh token: ${m.refreshable ? (m.keyIds.refreshToken ?? "(unknown format)") : "-"}`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
}
