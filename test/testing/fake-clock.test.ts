import { expect } from "chai";
import { FakeClock } from "../../src/testing/fake-clock";

/** Settles within a few event-loop turns, or reports that it did not (no timers: nothing here may wait for real time). */
async function settlesSoon(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void p.then(() => (settled = true));
  for (let i = 0; i < 5 && !settled; i++) await new Promise((r) => setImmediate(r));
  return settled;
}

describe("FakeClock (autoAdvance off)", () => {
  it("a sleep ends only when set() or advance() moves the clock to its wake-up time", async () => {
    const clock = new FakeClock("2026-01-01T00:00:00Z", { autoAdvance: false });
    const sleep = clock.sleep(1_000);
    expect(await settlesSoon(sleep)).to.equal(false);
    clock.advance(999);
    expect(await settlesSoon(sleep)).to.equal(false);
    clock.advance(1);
    expect(await settlesSoon(sleep)).to.equal(true);
  });

  it("a sleep that is already due (0 ms, or a negative remainder computed before the clock moved) ends without another set()", async () => {
    const clock = new FakeClock("2026-01-01T00:00:00Z", { autoAdvance: false });
    expect(await settlesSoon(clock.sleep(0))).to.equal(true);
    expect(await settlesSoon(clock.sleep(-5))).to.equal(true);
    expect(await settlesSoon(clock.sleep(Number.NaN))).to.equal(true);
  });
});
