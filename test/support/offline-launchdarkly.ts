import { basicLogger, init, type LDClient } from "@launchdarkly/node-server-sdk";
import { TestData } from "@launchdarkly/node-server-sdk/integrations";

/** A real LaunchDarkly client fed from LaunchDarkly's TestData: no network, no events, no SDK log output. */
export async function offlineLaunchDarkly(): Promise<{ client: LDClient; td: TestData }> {
  const td = new TestData();
  const client = init("sdk-key-not-used", { updateProcessor: td.getFactory(), sendEvents: false, diagnosticOptOut: true, logger: basicLogger({ level: "none" }) });
  await client.waitForInitialization({ timeout: 5 });
  return { client, td };
}
