/** The token broker: hand-outs and releases over HTTP for processes outside the service (git, CLIs, IDEs). See docs/token-broker.md. */
export { createTokenBroker, type TokenBroker, type TokenBrokerOptions } from "./token-broker";
export { bearerToken, type BrokerAuthenticate, type BrokerAuthResult, type BrokerGrant, type BrokerRefusal } from "./authenticate";
export { BrokerClient, BrokerRequestError, type BrokerClientOptions } from "./broker-client";
export type { BrokerOutcome, BrokerReleaseResult } from "./broker-metrics";
export { BROKER_PATHS, type BrokerErrorBody, type BrokerErrorCode, type HandOutRequestBody, type HandOutResponseBody, type ReleaseRequestBody, type ReleaseResponseBody } from "./protocol";
