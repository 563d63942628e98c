import { inspect } from "node:util";
import { expect } from "chai";
import { Token } from "../../src/token";

/*
 * A Token's secret must not travel with copies of the object: spreading it into a log line,
 * Object.values/entries, JSON, util.inspect, structuredClone (e.g. postMessage), Object.assign.
 * Only an explicit `token.value` reads it.
 */
describe("Token: copies of the object do not carry the secret", () => {
  const SECRET = "glpat-SECRET-0123456789abcdef";
  const token = new Token(SECRET, ["api"], new Date("2026-01-01T01:00:00Z"), new Date("2026-01-01T00:10:00Z"), "x-token-auth", {
    userId: "u",
    host: "gitlab.example.com",
    entryId: "e1",
    version: 3,
  });

  const copies: Array<[string, () => unknown]> = [
    ["JSON.stringify({ ...token })", () => JSON.stringify({ ...token })],
    ["JSON.stringify({ token: { ...token } }) (a log line built by spreading)", () => JSON.stringify({ token: { ...token } })],
    ["Object.values(token)", () => JSON.stringify(Object.values(token))],
    ["Object.entries(token)", () => JSON.stringify(Object.entries(token))],
    ["Object.assign({}, token)", () => JSON.stringify(Object.assign({}, token))],
    ["Object.keys(token)", () => Object.keys(token).join(",")],
    ["JSON.stringify(token)", () => JSON.stringify(token)],
    ["util.inspect(token)", () => inspect(token, { depth: 5, showHidden: true })],
    ["util.inspect({ ...token })", () => inspect({ ...token }, { depth: 5 })],
    ["structuredClone(token)", () => inspect(structuredClone(token), { depth: 5, showHidden: true })],
    ["`${JSON.stringify(token)}` in a template", () => `token=${JSON.stringify(token)}`],
  ];
  for (const [label, copy] of copies) {
    it(`${label} does not contain the token`, () => {
      expect(String(copy())).to.not.include(SECRET);
    });
  }

  it("token.value still reads it, and the other fields stay plain properties", () => {
    expect(token.value).to.equal(SECRET);
    const { value, ...rest } = token;
    expect(value, "destructuring by name reads the getter on purpose").to.equal(SECRET);
    expect(rest).to.deep.include({ scopes: ["api"], username: "x-token-auth" });
    expect(Object.keys(token)).to.not.include("value");
    expect(JSON.parse(JSON.stringify(token)).value).to.equal("[redacted]");
  });

  it("value cannot be overwritten", () => {
    expect(() => {
      (token as unknown as { value: string }).value = "other";
    }).to.throw(TypeError);
    expect(token.value).to.equal(SECRET);
  });
});
