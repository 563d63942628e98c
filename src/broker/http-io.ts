import type { IncomingMessage, ServerResponse } from "node:http";
import type { BrokerErrorBody } from "./protocol";

/** Why a body could not be read: too large, not JSON, not JSON content. */
export class BodyError extends Error {
  constructor(
    readonly status: 400 | 413 | 415,
    readonly code: "BAD_REQUEST" | "BODY_TOO_LARGE" | "UNSUPPORTED_MEDIA_TYPE",
    message: string,
  ) {
    super(message);
  }
}

/**
 * The request's JSON body, at most `maxBytes`. A body already parsed by a framework (Express's
 * `express.json()`, Fastify's `request.body` copied onto the raw request) is used as it is.
 */
export async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const parsed = (req as IncomingMessage & { body?: unknown }).body;
  if (parsed !== undefined && (req.readableEnded || req.complete)) {
    if (typeof parsed !== "object" || parsed === null || Buffer.isBuffer(parsed)) throw new BodyError(400, "BAD_REQUEST", "the body must be a JSON object");
    return parsed;
  }
  const type = (req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
  if (type !== "application/json") throw new BodyError(415, "UNSUPPORTED_MEDIA_TYPE", "send the body as Content-Type: application/json");
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes) throw new BodyError(413, "BODY_TOO_LARGE", `the body is larger than ${maxBytes} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new BodyError(413, "BODY_TOO_LARGE", `the body is larger than ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not an object");
    return value;
  } catch {
    throw new BodyError(400, "BAD_REQUEST", "the body must be a JSON object");
  }
}

/** Every broker response: JSON, never cached (it may carry a token), never sniffed. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": String(Buffer.byteLength(text)),
    "Cache-Control": "no-store",
    Pragma: "no-cache",
    "X-Content-Type-Options": "nosniff",
    ...headers,
  });
  res.end(text);
}

export function sendError(res: ServerResponse, status: number, code: string, message: string, retryAfterSeconds?: number, headers: Record<string, string> = {}): void {
  const body: BrokerErrorBody = { error: { code, message, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) } };
  sendJson(res, status, body, { ...(retryAfterSeconds === undefined ? {} : { "Retry-After": String(retryAfterSeconds) }), ...headers });
}
