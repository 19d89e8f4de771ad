// A big export that takes chDB a few seconds (long enough to kill a process in
// the middle of it), and the exact size of its CSVWithNames result.

export const BIG_EXPORT_ROWS = 20_000_000;
export const BIG_EXPORT = `SELECT number, toString(number) FROM numbers(${BIG_EXPORT_ROWS})`;

/** Bytes of BIG_EXPORT as CSVWithNames: `"number","toString(number)"` then `n,"n"` per row. */
export function bigExportSize(rows = BIG_EXPORT_ROWS): number {
  let size = '"number","toString(number)"\n'.length;
  for (let digits = 1, from = 0; from < rows; digits++) {
    const to = Math.min(rows, 10 ** digits);
    size += (to - from) * (2 * digits + 4);
    from = to;
  }
  return size;
}
