import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ClientAuthMethod, FakeScmHttpError, FakeScmJson, FakeScmProfile } from "./profiles";

/** Request parsing and response writing for the token endpoint. */

const MAX_BODY_BYTES = 64 * 1024;

export interface TokenRequest {
  /** Body parameters, plus query parameters when the profile accepts them (GitHub). */
  readonly params: Readonly<Record<string, string>>;
  /** Credentials from `Authorization: Basic`, if that header was sent. */
  readonly basic: { readonly clientId: string; readonly clientSecret: string } | "malformed" | undefined;
  /** GitHub answers form-encoded unless the client asked for JSON. */
  readonly acceptsJson: boolean;
}

export type ParseResult =
  | { readonly ok: true; readonly request: TokenRequest }
  | { readonly ok: false; readonly reason: "unsupported_content_type" | "invalid_request" | "too_large"; readonly description: string };

export function readBody(req: IncomingMessage): Promise<Buffer | "too_large"> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on("end", () => resolve(tooLarge ? "too_large" : Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

export function parseTokenRequest(req: IncomingMessage, body: Buffer | "too_large", url: URL, profile: FakeScmProfile): ParseResult {
  if (body === "too_large") return { ok: false, reason: "too_large", description: "Request body too large." };
  const contentType = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  const text = body.toString("utf8");

  let bodyParams: Record<string, string>;
  if (contentType === "application/x-www-form-urlencoded" || (contentType === "" && text === "")) {
    const parsed = fromPairs(new URLSearchParams(text));
    if (!parsed) return { ok: false, reason: "invalid_request", description: "A parameter was repeated." };
    bodyParams = parsed;
  } else if (contentType === "application/json" && profile.requestFormat === "form_or_json") {
    const parsed = parseJsonParams(text);
    if (!parsed) return { ok: false, reason: "invalid_request", description: "The JSON body is not an object of string values." };
    bodyParams = parsed;
  } else {
    return { ok: false, reason: "unsupported_content_type", description: `Unsupported content type "${contentType}".` };
  }

  let params = bodyParams;
  if (profile.clientAuth.includes("query")) {
    // GitHub documents the refresh parameters as query parameters; the body wins on conflict.
    const query = fromPairs(url.searchParams);
    if (!query) return { ok: false, reason: "invalid_request", description: "A parameter was repeated." };
    params = { ...query, ...bodyParams };
  }

  return {
    ok: true,
    request: {
      params,
      basic: parseBasic(req.headers.authorization),
      acceptsJson: (req.headers.accept ?? "").toLowerCase().includes("application/json"),
    },
  };
}

/** RFC 6749 §3.2: a repeated parameter is an invalid request, so duplicates return undefined. */
function fromPairs(search: URLSearchParams): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const [key, value] of search) {
    if (Object.prototype.hasOwnProperty.call(out, key)) return undefined;
    out[key] = value;
  }
  return out;
}

function parseJsonParams(text: string): Record<string, string> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== "string") return undefined;
    out[key] = v;
  }
  return out;
}

/** RFC 6749 §2.3.1: `Basic base64(urlencode(id) ":" urlencode(secret))`. */
export function parseBasic(header: string | undefined): TokenRequest["basic"] {
  if (header === undefined) return undefined;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!match) return /^Basic\b/i.test(header) ? "malformed" : undefined;
  const decoded = Buffer.from(match[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return "malformed";
  try {
    return {
      clientId: decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, " ")),
      clientSecret: decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, " ")),
    };
  } catch {
    return "malformed";
  }
}

/** Which method the request used to authenticate the client, and whether it matches. */
export function authenticateClient(
  request: TokenRequest,
  accepted: readonly ClientAuthMethod[],
  clientId: string,
  clientSecret: string,
): { readonly ok: boolean; readonly usedBasic: boolean } {
  if (request.basic !== undefined) {
    // Doorkeeper tries Basic first; a profile without Basic rejects the header outright.
    const ok = accepted.includes("basic") && request.basic !== "malformed" && safeEqual(request.basic.clientId, clientId) && safeEqual(request.basic.clientSecret, clientSecret);
    return { ok, usedBasic: true };
  }
  // Query parameters were merged into `params` only for profiles that accept them.
  const paramsAccepted = accepted.includes("body") || accepted.includes("query");
  const id = request.params["client_id"];
  const secret = request.params["client_secret"];
  const ok = paramsAccepted && id !== undefined && secret !== undefined && safeEqual(id, clientId) && safeEqual(secret, clientSecret);
  return { ok, usedBasic: false };
}

function safeEqual(a: string, b: string): boolean {
  const digest = (s: string) => createHash("sha256").update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}

/** RFC 6749 §5.1: token responses must not be cached. */
const NO_STORE = { "Cache-Control": "no-store", Pragma: "no-cache" } as const;

/** Writes a token-endpoint answer: JSON, or form-encoded for GitHub without `Accept: application/json`. */
export function sendTokenEndpoint(
  res: ServerResponse,
  profile: FakeScmProfile,
  acceptsJson: boolean,
  status: number,
  body: { readonly [key: string]: FakeScmJson },
  headers: Readonly<Record<string, string>> = {},
): void {
  if (profile.responseQuirks.formEncodedUnlessAcceptJson && !acceptsJson) {
    const form = new URLSearchParams();
    for (const [key, value] of Object.entries(body)) {
      if (value !== null) form.append(key, typeof value === "object" ? JSON.stringify(value) : String(value));
    }
    send(res, status, "application/x-www-form-urlencoded; charset=utf-8", form.toString(), { ...NO_STORE, ...headers });
    return;
  }
  send(res, status, "application/json; charset=utf-8", JSON.stringify(body), { ...NO_STORE, ...headers });
}

export function sendError(res: ServerResponse, error: FakeScmHttpError, extraHeaders: Readonly<Record<string, string>> = {}): void {
  send(res, error.status, "application/json; charset=utf-8", JSON.stringify(error.body), { ...error.headers, ...extraHeaders });
}

export function send(res: ServerResponse, status: number, contentType: string, body: string, headers: Readonly<Record<string, string>> = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { ...headers, "Content-Type": contentType, "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}
