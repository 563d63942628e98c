import { expect } from "chai";
import fc from "fast-check";
import { fromSqlDate, toSqlDate } from "../src/storage/sql-values";

/** The store's date spelling as it was first written: toISOString without the T and the Z. */
const isoSpelling = (date: Date) => date.toISOString().replace("T", " ").replace("Z", "");

describe("sql-values: the store's date spelling", () => {
  it("spells every instant as toISOString does, with a space for the T and no Z (any valid Date, year -271821 to 275760)", () => {
    fc.assert(
      fc.property(fc.date({ noInvalidDate: true }), (date) => {
        expect(toSqlDate(date)).to.equal(isoSpelling(date));
      }),
      { numRuns: 20_000 },
    );
  });

  it("spells the edges of the four-digit years and every field's padding as toISOString does", () => {
    const edges = ["0000-01-01T00:00:00.000Z", "0001-02-03T04:05:06.007Z", "0999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z", "2026-11-30T09:08:07.060Z"].map((s) => new Date(s));
    const outside = [new Date(Date.UTC(10_000, 0, 1)), new Date(Date.UTC(-1, 11, 31, 23, 59, 59, 999))];
    for (const date of [...edges, ...outside]) expect(toSqlDate(date), date.toISOString()).to.equal(isoSpelling(date));
    expect(toSqlDate(new Date("0001-02-03T04:05:06.007Z"))).to.equal("0001-02-03 04:05:06.007");
  });

  it("reads back (fromSqlDate) the instant it wrote, for instants in years 0-9999", () => {
    fc.assert(
      fc.property(fc.date({ min: new Date("0000-01-01T00:00:00.000Z"), max: new Date("9999-12-31T23:59:59.999Z"), noInvalidDate: true }), (date) => {
        expect(fromSqlDate(toSqlDate(date))?.getTime()).to.equal(date.getTime());
      }),
      { numRuns: 5_000 },
    );
  });
});
