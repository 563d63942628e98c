/** The fake SCM OAuth server of the testing kit. See `FakeScmServer` for a tutorial. */
export { FakeScmServer, type FakeScmServerOptions } from "./fake-scm-server";
export {
  FAKE_SCM_PROFILES,
  type ClientAuthMethod,
  type FakeScmErrors,
  type FakeScmHttpError,
  type FakeScmJson,
  type FakeScmProfile,
  type FakeScmProfileName,
  type FakeScmProfileOverrides,
  type FakeScmResponseQuirks,
  type FakeScmRevocation,
  type FakeScmTokenFormat,
} from "./profiles";
export type { FakeScmCounters } from "./counters";
export type { InjectedFailure } from "./failure-injection";
export type { PauseHandle, PausePoint } from "./pause-points";
export type { IssuedTokens } from "./token-families";
