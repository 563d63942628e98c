import fc from "fast-check";

/**
 * Generators of hostile input. Look-alike ids are the heart of it: two ids that a human, a
 * case-insensitive collation, a Unicode normaliser or a trimming layer might treat as one, but that
 * the library must treat as two different users.
 */

/** Transformations that turn an id into a different string that "looks like" it. */
export const LOOKALIKE_TRANSFORMS = {
  upper: (s: string) => s.toUpperCase(),
  lower: (s: string) => s.toLowerCase(),
  swapCaseFirst: (s: string) => swapFirstLetter(s),
  nfd: (s: string) => s.normalize("NFD"),
  nfc: (s: string) => s.normalize("NFC"),
  stripAccents: (s: string) => s.normalize("NFD").replace(/[\u0300-\u036f]/g, ""),
  accentE: (s: string) => s.replace(/e/g, "é").replace(/E/g, "É"),
  accentA: (s: string) => s.replace(/a/g, "å").replace(/A/g, "Å"),
  sharpS: (s: string) => s.replace(/ss/g, "ß"),
  cyrillicA: (s: string) => s.replace(/a/g, "\u0430"),
  cyrillicO: (s: string) => s.replace(/o/g, "\u043e"),
  fullwidth: (s: string) => s.replace(/[A-Za-z0-9]/, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0)),
  zeroWidthSpace: (s: string) => `${s.slice(0, 1)}\u200b${s.slice(1)}`,
  zeroWidthTrailing: (s: string) => `${s}\u200b`,
  bomLeading: (s: string) => `\ufeff${s}`,
  zeroWidthJoiner: (s: string) => `${s}\u200d`,
  trailingSpace: (s: string) => `${s} `,
  leadingSpace: (s: string) => ` ${s}`,
  trailingNbsp: (s: string) => `${s}\u00a0`,
  trailingTab: (s: string) => `${s}\t`,
  trailingNul: (s: string) => `${s}\u0000`,
  innerNewline: (s: string) => `${s.slice(0, 1)}\n${s.slice(1)}`,
  trailingDot: (s: string) => `${s}.`,
  ligatureFi: (s: string) => s.replace(/fi/g, "\ufb01"),
  dotlessI: (s: string) => s.replace(/i/g, "\u0131"),
  kelvin: (s: string) => s.replace(/k/gi, "\u212a"),
} as const;

export type LookalikeTransform = keyof typeof LOOKALIKE_TRANSFORMS;

function swapFirstLetter(s: string): string {
  const i = [...s].findIndex((c) => c.toLowerCase() !== c.toUpperCase());
  if (i < 0) return s;
  const chars = [...s];
  const c = chars[i];
  chars[i] = c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase();
  return chars.join("");
}

/** The middle of an id: letters that the look-alike transforms have something to bite on. */
const idCore = fc.oneof(
  fc.constantFrom("alice", "Åsa", "José", "strasse", "straße", "file", "Kim", "İlkay", "ioana", "émile", "e\u0301mile", "Ärger", "öko", "dasha", "Ωmega", "ß", "ǅenan", "kvist"),
  fc.stringMatching(/^[a-zA-Z][a-zA-Z0-9._@-]{0,12}$/),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 8 }),
);

/**
 * A pair of ids that look alike but differ as strings. `tag` makes every pair unique in the run (the
 * MariaDB database is shared by all tests and runs): it goes in front, so the transform applies to it too.
 */
export function lookalikeIdPair(tag: () => string): fc.Arbitrary<{ a: string; b: string; transform: LookalikeTransform }> {
  return fc
    .record({ core: idCore, transform: fc.constantFrom(...(Object.keys(LOOKALIKE_TRANSFORMS) as LookalikeTransform[])), swap: fc.boolean() })
    .map(({ core, transform, swap }) => {
      const base = `${tag()}-${core}`;
      const other = LOOKALIKE_TRANSFORMS[transform](base);
      return swap ? { a: other, b: base, transform } : { a: base, b: other, transform };
    })
    .filter(({ a, b }) => a !== b);
}

/** Values of the wrong kind for any argument. */
export const hostileScalar: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(undefined, null, NaN, Infinity, -Infinity, 0, -0, -1, 1e308, Number.MAX_SAFE_INTEGER + 2, true, false, "", " ", "NaN", "5", "\u0000", [], {}, [1], () => 1, Symbol("x"), 10n, new Date(NaN), new Date(0)),
  fc.double(),
  fc.integer(),
  fc.string({ maxLength: 8 }),
  fc.object({ maxDepth: 1, maxKeys: 3 }),
);

/** Numbers around every boundary that matters (NaN, infinities, zero, negatives, fractions, huge). */
export const hostileNumber: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(NaN, Infinity, -Infinity, 0, -0, -1, 0.5, 1 / 60, 0.001, 1440, 1441, 1e9, 1e308, Number.MAX_SAFE_INTEGER, 2 ** 31, -(2 ** 31)),
  fc.double({ noNaN: false }),
  fc.integer({ min: -1_000_000, max: 10_000_000 }),
  fc.constantFrom("5", "1e3", "", null, true, {}, [], { valueOf: () => 5 }),
);

/** Look-alikes of a configured host: only surrounding whitespace, letter case and the root's trailing dot may be forgiven. */
export function hostVariants(host: string): Array<{ host: string; sameHost: boolean | "either" }> {
  return [
    { host: host.toUpperCase(), sameHost: true },
    { host: ` ${host}`, sameHost: true },
    { host: `${host} `, sameHost: true },
    // The DNS root's dot: the same host to a resolver; the library may canonicalise or refuse it.
    { host: `${host}.`, sameHost: "either" as const },
    { host: `${host.toUpperCase()}. `, sameHost: "either" as const },
    { host: `${host}..`, sameHost: false },
    { host: `.${host}`, sameHost: false },
    { host: `${host}\u200b`, sameHost: false },
    // JavaScript's trim() takes the BOM and NBSP for whitespace: forgiving them is harmless (same user, same host).
    { host: `\ufeff${host}`, sameHost: "either" as const },
    { host: `${host}\u00a0`, sameHost: "either" as const },
    { host: host.replace(/a/, "\u0430"), sameHost: host.indexOf("a") < 0 },
    { host: host.replace(/e/, "é"), sameHost: host.indexOf("e") < 0 },
    { host: `${host}:443`, sameHost: false },
    { host: `https://${host}`, sameHost: false },
    { host: `${host}/`, sameHost: false },
    { host: `${host}\u0000`, sameHost: false },
    { host: host.replace(/\./, "\u3002"), sameHost: false },
    { host: host.normalize("NFD"), sameHost: true },
    { host: host.replace(/\./g, "\uff0e"), sameHost: false },
    { host: `${host}\u2028`, sameHost: "either" as const },
    { host: `${host}\n`, sameHost: "either" as const },
    { host: `${host}\r\n`, sameHost: "either" as const },
  ];
}

/** Strings that must never be accepted where a secret goes: empty, control characters, oversized. */
export const oversizedOrControl: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("", "\u0000", "a\nb", "tab\there", "\u007f"),
  fc.constantFrom(16 * 1024 + 1, 20_000, 70_000).map((n) => "x".repeat(n)),
);
