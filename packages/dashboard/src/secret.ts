/**
 * Signing secrets made in the browser: 32 bytes from the platform CSPRNG, written the way
 * Standard Webhooks suggests (`whsec_` + base64). The server never needs to see how it was made.
 */
export function generateSecret(): string {
  const bytes = new Uint8Array(32);
  crypto.getRandomValues(bytes);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return 'whsec_' + btoa(bin);
}
