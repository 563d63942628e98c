import { ConfigurationError } from "../errors";

const HOST = /^[a-z0-9.-]+(:\d{1,5})?$/;

/**
 * The one spelling of a host: without surrounding spaces, lower case, without the DNS root's trailing dot
 * ("Bitbucket.Example.com." → "bitbucket.example.com"), so two spellings of one host are one key —
 * for provider lookup and for the duplicate-provider check.
 */
export function canonicalHost(host: string): string {
  // Only ASCII spaces and tabs are trimmed: String.trim would also drop a BOM or a no-break space,
  // turning a look-alike ("\ufeffhost") into the configured host.
  // [\s\S], not ".": a host with a line break inside must stay a (non-matching) string, not crash.
  const match = /^([\s\S]*?)\.?(:\d{1,5})?$/.exec(host.replace(/^[ \t]+|[ \t]+$/g, "").toLowerCase());
  return match ? match[1] + (match[2] ?? "") : host;
}

/** A provider's host in canonical form; it must look like "name[:port]". */
export function normalizeHost(host: string, option = "host"): string {
  const normalized = typeof host === "string" ? canonicalHost(host) : "";
  if (!HOST.test(normalized) || normalized.length > 255 || normalized.startsWith(".") || normalized.includes("..")) {
    throw new ConfigurationError(`provider host ${JSON.stringify(typeof host === "string" ? host.slice(0, 100) : typeof host)} is not a host name like "bitbucket.example.com" or "127.0.0.1:7990"`, option);
  }
  return normalized;
}
