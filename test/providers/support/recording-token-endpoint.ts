import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * A token endpoint that records every request and answers from a queue: for wire details the fake
 * SCM does not expose (exact headers, Basic credentials) and answers it cannot give (HTML on 200, a
 * reset before any response, a GitLab `created_at` from a skewed server clock).
 */

export interface RecordedRequest {
  method: string;
  /** Path and query, e.g. "/oauth/token". */
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The body parsed as a form. */
  form: Record<string, string>;
  /** `Authorization: Basic` decoded (RFC 6749 §2.3.1 form-decoding), if sent. */
  basic?: { clientId: string; clientSecret: string };
}

export type CannedAnswer =
  | { status: number; json: Record<string, unknown>; headers?: Record<string, string> }
  | { status: number; text: string; contentType: string; headers?: Record<string, string> }
  /** Destroy the socket before answering (connection reset, nothing committed). */
  | { reset: true }
  /** Never answer (until close()). */
  | { hang: true };

export class RecordingTokenEndpoint {
  readonly requests: RecordedRequest[] = [];
  private readonly answers: CannedAnswer[] = [];
  private readonly sockets = new Set<Socket>();
  private url = "";

  private readonly server: Server;

  private constructor(private readonly fallback: () => CannedAnswer) {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        this.requests.push({
          method: req.method ?? "",
          url: req.url ?? "",
          headers: req.headers,
          body,
          form: Object.fromEntries(new URLSearchParams(body)),
          basic: decodeBasic(req.headers.authorization),
        });
        const answer = this.answers.shift() ?? this.fallback();
        if ("reset" in answer) return void req.socket.destroy();
        if ("hang" in answer) return;
        const [contentType, text] = "json" in answer ? ["application/json; charset=utf-8", JSON.stringify(answer.json)] : [answer.contentType, answer.text];
        res.writeHead(answer.status, { ...answer.headers, "Content-Type": contentType, "Content-Length": Buffer.byteLength(text) });
        res.end(text);
      });
    });
    this.server.on("connection", (s: Socket) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
  }

  /** Starts on 127.0.0.1; with an empty queue it answers `fallback()` (default: a valid token response). */
  static async start(fallback: () => CannedAnswer = () => tokenAnswer()): Promise<RecordingTokenEndpoint> {
    const endpoint = new RecordingTokenEndpoint(fallback);
    await new Promise<void>((resolve) => endpoint.server.listen(0, "127.0.0.1", resolve));
    endpoint.url = `http://127.0.0.1:${(endpoint.server.address() as AddressInfo).port}`;
    return endpoint;
  }

  get baseUrl(): string {
    return this.url;
  }

  /** Queues answers for the next requests. */
  answer(...answers: CannedAnswer[]): void {
    this.answers.push(...answers);
  }

  get last(): RecordedRequest {
    const last = this.requests[this.requests.length - 1];
    if (!last) throw new Error("no request recorded");
    return last;
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A valid RFC 6749 §5.1 answer; `fields` add or replace fields (undefined removes one). */
export function tokenAnswer(fields: Record<string, unknown> = {}, headers?: Record<string, string>): CannedAnswer {
  const json: Record<string, unknown> = { access_token: "new-access-token", token_type: "bearer", expires_in: 3600, refresh_token: "new-refresh-token", scope: "read write" };
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) delete json[k];
    else json[k] = v;
  }
  return { status: 200, json, headers: { "Cache-Control": "no-store", ...headers } };
}

export function errorAnswer(status: number, error: string, description?: string, headers?: Record<string, string>): CannedAnswer {
  return { status, json: description === undefined ? { error } : { error, error_description: description }, headers };
}

function decodeBasic(header: string | undefined): RecordedRequest["basic"] {
  const match = /^Basic\s+(\S+)$/i.exec(header ?? "");
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  const formDecode = (s: string) => decodeURIComponent(s.replace(/\+/g, " "));
  return { clientId: formDecode(decoded.slice(0, colon)), clientSecret: formDecode(decoded.slice(colon + 1)) };
}
