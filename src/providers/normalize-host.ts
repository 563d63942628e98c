import { ConfigurationError } from "../errors";

const HOST = /^[a-z0-9.-]+(:\d{1,5})?$/;

/** Hosts are compared in lower case; a provider's host must look like "name[:port]". */
export function normalizeHost(host: string): string {
  const normalized = typeof host === "string" ? host.trim().toLowerCase() : "";
  if (!HOST.test(normalized) || normalized.length > 255) {
    throw new ConfigurationError(`provider host ${JSON.stringify(host)} is not a host name like "bitbucket.example.com" or "127.0.0.1:7990"`);
  }
  return normalized;
}
