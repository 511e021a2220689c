/**
 * A receiver's response body as the Webhook History shows it. Decoded by the charset its
 * `Content-Type` names when that is one the WHATWG Encoding standard knows (`iso-8859-1`,
 * `windows-1252`, `shift_jis`, `utf-16le`, …), as UTF-8 otherwise. A body cut at the capture
 * limit loses the character the cut split instead of ending in U+FFFD. Bytes that are not text
 * in that encoding become U+FFFD, and so does NUL, which PostgreSQL's TEXT cannot hold.
 */
export function responseText(bytes: Uint8Array, contentType: string | undefined, truncated: boolean): string {
  const label = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? '')?.[1];
  let decoder: InstanceType<typeof TextDecoder>;
  try {
    decoder = new TextDecoder(label ?? 'utf-8');
  } catch {
    decoder = new TextDecoder('utf-8'); // a charset nobody knows: read it as UTF-8
  }
  // `stream` keeps back a trailing partial character, and no later call ever asks for it.
  return decoder.decode(bytes, { stream: truncated }).replace(/\0/g, '\uFFFD');
}
