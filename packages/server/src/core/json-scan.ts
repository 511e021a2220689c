/**
 * A single pass over JSON text that JSON.parse has already accepted. It measures nesting
 * depth (JSON.parse copes with 10^6 levels, but anything that re-serialises such a value
 * throws, so deep payloads are refused at the door) and finds where each top-level member's
 * value starts and ends, so `data` can be delivered exactly as the publisher wrote it:
 * big integers, `1.0`, key order and whitespace survive.
 */
export interface ScanResult {
  maxDepth: number;
  /** Top-level member name -> [start, end) of its value in the text. Last duplicate wins, as in JSON.parse. */
  members: Map<string, [number, number]>;
}

const QUOTE = 34;
const BACKSLASH = 92;
const OPEN_OBJ = 123;
const CLOSE_OBJ = 125;
const OPEN_ARR = 91;
const CLOSE_ARR = 93;
const COLON = 58;
const COMMA = 44;

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13;
}

export function scanJson(text: string): ScanResult {
  const members = new Map<string, [number, number]>();
  let depth = 0;
  let maxDepth = 0;
  let key: string | null = null;
  let valueStart = -1;
  let expectKey = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const start = i;
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === BACKSLASH) i += 2;
        else if (d === QUOTE) break;
        else i++;
      }
      if (depth === 1 && expectKey) {
        key = JSON.parse(text.slice(start, i + 1)) as string;
        expectKey = false;
      }
      continue;
    }
    if (c === OPEN_OBJ || c === OPEN_ARR) {
      depth++;
      if (depth > maxDepth) maxDepth = depth;
      if (depth === 1) expectKey = c === OPEN_OBJ;
    } else if (c === CLOSE_OBJ || c === CLOSE_ARR) {
      if (depth === 1) closeMember(i);
      depth--;
    } else if (depth === 1) {
      if (c === COLON) {
        valueStart = i + 1;
        while (valueStart < n && isSpace(text.charCodeAt(valueStart))) valueStart++;
      } else if (c === COMMA) {
        closeMember(i);
        expectKey = true;
      }
    }
  }
  return { maxDepth, members };

  function closeMember(end: number): void {
    if (key === null || valueStart < 0) return;
    let e = end;
    while (e > valueStart && isSpace(text.charCodeAt(e - 1))) e--;
    members.set(key, [valueStart, e]);
    key = null;
    valueStart = -1;
  }
}
