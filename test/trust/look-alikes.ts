/**
 * Pairs of ids a case- or accent-insensitive (or PAD SPACE, or normalising) comparison would take
 * for one another. The library compares ids byte for byte: each pair names two different users.
 * `of(prefix)` keeps ids unique per test while the two spellings differ only in the named way.
 */
export interface LookAlike {
  name: string;
  of(prefix: string): [original: string, lookAlike: string];
}

export const LOOK_ALIKES: LookAlike[] = [
  { name: "upper case", of: (p) => [`${p}-alice`, `${p}-ALICE`] },
  { name: "title case", of: (p) => [`${p}-alice`, `${p}-Alice`] },
  { name: "accent (é for e)", of: (p) => [`${p}-alice`, `${p}-alic\u00e9`] },
  { name: "ring above (å for a)", of: (p) => [`${p}-alice`, `${p}-\u00e5lice`] },
  { name: "NFC and NFD forms of one name", of: (p) => [`${p}-Jos\u00e9`, `${p}-Jose\u0301`] },
  { name: "zero-width space inside", of: (p) => [`${p}-alice`, `${p}-al\u200bice`] },
  { name: "German sharp s (ß for ss)", of: (p) => [`${p}-strasse`, `${p}-stra\u00dfe`] },
  { name: "full-width letters", of: (p) => [`${p}-alice`, `${p}-\uff41\uff4c\uff49\uff43\uff45`] },
];

/** Spellings the library rejects (InvalidArgumentError) before touching the database. */
export const REJECTED_SPELLINGS: Array<{ name: string; of(prefix: string): [original: string, rejected: string] }> = [
  { name: "trailing space", of: (p) => [`${p}-alice`, `${p}-alice `] },
  { name: "leading space", of: (p) => [`${p}-alice`, ` ${p}-alice`] },
  { name: "trailing tab", of: (p) => [`${p}-alice`, `${p}-alice\t`] },
];
