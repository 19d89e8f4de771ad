// Just enough of ClickHouse's lexical rules to quote values safely and to see a
// query text's statements and top-level words without being fooled by string
// literals, quoted identifiers or comments.

/** A ClickHouse string literal: backslashes, quotes and control bytes escaped. */
export function quoteString(value: string): string {
  return `'${value.replace(/[\\'\0\n\r\t]/g, (c) => ESCAPES[c]!)}'`;
}

const ESCAPES: Record<string, string> = { "\\": "\\\\", "'": "\\'", "\0": "\\0", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

export interface Word {
  /** Upper-cased word. */
  text: string;
  /** Offset in the text. */
  at: number;
  /** Parenthesis depth where the word stands. */
  depth: number;
}

export interface LexedQuery {
  /** Each statement's text (up to, not including, its `;`), comments kept, blanks trimmed; empty ones dropped. */
  statements: string[];
  /** Unquoted words outside comments and literals, in order, over all statements. */
  words: Word[];
  /** A literal, quoted identifier or comment that never closes. */
  unterminated: string | undefined;
}

export function lexQuery(text: string): LexedQuery {
  const statements: string[] = [];
  const words: Word[] = [];
  let start = 0;
  let depth = 0;
  let hasCode = false;
  let i = 0;
  const endStatement = (end: number) => {
    const body = text.slice(start, end).trim();
    if (hasCode && body) statements.push(body);
    hasCode = false;
  };
  while (i < text.length) {
    const c = text[i]!;
    if (c === "'" || c === '"' || c === "`") {
      const close = closingQuote(text, i);
      if (close < 0) return { statements, words, unterminated: c === "'" ? "string literal" : "quoted identifier" };
      i = close + 1;
      hasCode = true;
    } else if ((c === "-" && text[i + 1] === "-") || c === "#") {
      const nl = text.indexOf("\n", i);
      i = nl < 0 ? text.length : nl + 1;
    } else if (c === "/" && text[i + 1] === "*") {
      const close = closingBlockComment(text, i);
      if (close < 0) return { statements, words, unterminated: "comment" };
      i = close;
    } else if (c === "$" && /^\$[A-Za-z0-9_]*\$/.test(text.slice(i, i + 66))) {
      const tag = /^\$[A-Za-z0-9_]*\$/.exec(text.slice(i, i + 66))![0];
      const close = text.indexOf(tag, i + tag.length);
      if (close < 0) return { statements, words, unterminated: "heredoc" };
      i = close + tag.length;
      hasCode = true;
    } else if (c === ";") {
      endStatement(i);
      start = i + 1;
      i++;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(text.slice(i, i + 256))!;
      words.push({ text: m[0].toUpperCase(), at: i, depth });
      i += m[0].length;
      hasCode = true;
    } else {
      if (c === "(") depth++;
      else if (c === ")") depth--;
      if (!/\s/.test(c)) hasCode = true;
      i++;
    }
  }
  endStatement(text.length);
  return { statements, words, unterminated: undefined };
}

/** Index of the quote closing the one at `open`, honouring backslash escapes and doubled quotes; -1 if none. */
function closingQuote(text: string, open: number): number {
  const q = text[open];
  for (let i = open + 1; i < text.length; i++) {
    const c = text[i];
    if (c === "\\") i++;
    else if (c === q) {
      if (text[i + 1] === q) i++;
      else return i;
    }
  }
  return -1;
}

/** Index just past the `*\/` closing the (possibly nested) comment at `open`; -1 if none. */
function closingBlockComment(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length - 1; i++) {
    if (text[i] === "/" && text[i + 1] === "*") {
      depth++;
      i++;
    } else if (text[i] === "*" && text[i + 1] === "/") {
      depth--;
      i++;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

/**
 * One checked statement with every run of blanks outside literals and quoted names made one
 * space: two queries that differ only in layout normalise alike (result reuse compares them).
 */
export function normalizeStatement(statement: string): string {
  let out = "";
  let quote: string | undefined;
  let blank = false;
  for (let i = 0; i < statement.length; i++) {
    const c = statement[i]!;
    if (quote) {
      out += c;
      if (c === "\\" && quote !== "`") out += statement[++i] ?? "";
      else if (c === quote) quote = undefined;
      continue;
    }
    if (/\s/.test(c)) {
      blank = true;
      continue;
    }
    if (blank && out !== "") out += " ";
    blank = false;
    out += c;
    if (c === "'" || c === '"' || c === "`") quote = c;
  }
  return out;
}
