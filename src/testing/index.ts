/**
 * The testing kit, published as `scm-token-service/testing`: fake SCM servers with each provider's
 * real behaviour, a clock tests can move, and a one-call service for unit tests (embedded database,
 * static flags, private metrics registry, recording logger). See docs/testing-kit.md.
 */
export * from "./fake-scm";
export { FakeClock } from "./fake-clock";
export { createTestTokenService, type TestTokenService, type TestTokenServiceOptions } from "./create-test-token-service";
export { RecordingLogger, type LogRecord } from "./recording-logger";
export { providerForFakeScm, DEFAULT_TEST_HOSTS } from "./provider-for-fake-scm";
export { DbFaultProxy, type DbFaultMode, type DbFaultProxyOptions } from "./db-fault-proxy";
export { startTestTokenBroker, type TestTokenBroker, type TestTokenBrokerOptions } from "./test-token-broker";
