import { readFileSync } from 'node:fs';

// Read once from the package manifest so the User-Agent, /v1/meta and the OpenAPI document agree.
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export const USER_AGENT = `Herald-Webhooks/${VERSION}`;
