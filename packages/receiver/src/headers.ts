import type { HeadersInput } from './types.js';

/**
 * One header's value, or undefined when absent. Names match in any case. Repeated headers
 * come back joined by ", ", the way Fetch `Headers` and node's `IncomingMessage` join them.
 */
export function getHeader(headers: HeadersInput, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(n: string): string | null }).get(name) ?? undefined;
  }
  const record = headers as Readonly<Record<string, string | readonly string[] | undefined>>;
  const lower = name.toLowerCase();
  // node lower-cases header names, so the direct lookup is the common case.
  let value = Object.prototype.hasOwnProperty.call(record, lower) ? record[lower] : undefined;
  if (value === undefined) {
    for (const key of Object.keys(record)) {
      if (key.toLowerCase() === lower) {
        value = record[key];
        break;
      }
    }
  }
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : value.join(', ');
}
