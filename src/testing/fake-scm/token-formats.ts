import { randomBytes, randomInt } from "node:crypto";
import type { FakeScmTokenFormat } from "./profiles";

/**
 * Random token strings in each provider's shape. The fake never parses them:
 * every token, JWT-shaped or not, is looked up in the server's state, as BB DC does.
 */

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

function base62(length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) out += BASE62[randomInt(BASE62.length)];
  return out;
}

function base64url(value: string | Buffer): string {
  return Buffer.from(value).toString("base64url");
}

/** BB DC: `jwtService.createToken(id)`, a JWT wrapping a random token id. Signature is random bytes. */
function jwtShaped(): string {
  const header = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const payload = base64url(JSON.stringify({ id: randomBytes(16).toString("hex") }));
  return `${header}.${payload}.${base64url(randomBytes(32))}`;
}

export function newToken(format: FakeScmTokenFormat, kind: "access" | "refresh"): string {
  switch (format) {
    case "jwt_shaped":
      return jwtShaped();
    case "hex64": // GitLab
      return randomBytes(32).toString("hex");
    case "github_user_to_server": // ghu_ access, ghr_ refresh; lengths as observed, not guaranteed
      return kind === "access" ? `ghu_${base62(36)}` : `ghr_${base62(76)}`;
    case "github_oauth": // gho_; OAuth apps get no refresh token, but keep the shape consistent
      return kind === "access" ? `gho_${base62(36)}` : `ghr_${base62(76)}`;
    case "opaque":
      return randomBytes(32).toString("base64url");
  }
}

/** Family ids are not secrets; they show up in test output. */
export function newFamilyId(): string {
  return `fam_${randomBytes(6).toString("hex")}`;
}
