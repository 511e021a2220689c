/**
 * A receiver's response body as the Webhook History shows it. Decoded by the charset its
 * `Content-Type` names when that is one the WHATWG Encoding standard knows (`iso-8859-1`,
 * `windows-1252`, `shift_jis`, `utf-16le`, …), as UTF-8 otherwise. A body cut at the capture
 * limit loses the character the cut split instead of ending in U+FFFD. Bytes that are not text
 * in that encoding become U+FFFD, and so does NUL, which PostgreSQL's TEXT cannot hold.
 */
export function responseText(bytes: Uint8Array, contentType: string | undefined, truncated: boolean): string {
  const label = contentType?.includes(';') ? /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType)?.[1] : undefined;
  const decoder = label === undefined ? null : decoderFor(label);
  // UTF-8, by far the most common, is decoded natively (once per delivery, on the hot path).
  const text = decoder
    ? decoder.decode(bytes, { stream: truncated }) // `stream` keeps back a trailing partial character
    : Buffer.from(bytes.buffer, bytes.byteOffset, truncated ? wholeUtf8(bytes) : bytes.length).toString('utf8');
  return text.includes('\0') ? text.replace(/\0/g, '\uFFFD') : text;
}

type Decoder = InstanceType<typeof TextDecoder>;
/** Decoders by charset label, made once each (null: UTF-8, or a label no one knows). */
const decoders = new Map<string, Decoder | null>();

function decoderFor(label: string): Decoder | null {
  const key = label.toLowerCase();
  let d = decoders.get(key);
  if (d === undefined) {
    try {
      const made = new TextDecoder(key);
      d = made.encoding === 'utf-8' ? null : made;
    } catch {
      d = null; // a charset nobody knows: read it as UTF-8
    }
    if (decoders.size < 64) decoders.set(key, d); // bounded: labels come from receivers
  }
  return d;
}

/** How many bytes of `b` end on a whole UTF-8 character: a sequence the cut split is left out. */
function wholeUtf8(b: Uint8Array): number {
  const i = b.length;
  // Back over up to three continuation bytes (10xxxxxx) to the lead byte of the last sequence.
  let back = 0;
  while (back < 3 && i - back - 1 >= 0 && (b[i - back - 1]! & 0xc0) === 0x80) back++;
  const leadAt = i - back - 1;
  if (leadAt < 0) return i;
  const lead = b[leadAt]!;
  const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return need > back + 1 ? leadAt : i;
}
