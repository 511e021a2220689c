import { existsSync, readdirSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { notBuiltPage, PAGE_CSP, SECURITY_HEADERS } from './pages.js';

/**
 * Serves the built web app (packages/dashboard/dist) at `/`. Only files that exist in the
 * build are served, looked up in a set of their URL paths, so no request path ever reaches
 * the file system unchecked. Any other GET that is not an API path gets index.html, so the
 * app's own routes (/settings/webhooks/…) survive a reload.
 */

/** Paths that belong to the server, never to the app: a miss there is an honest 404. */
const SERVER_PREFIXES = ['/v1/', '/portal/', '/docs', '/openapi.json', '/healthz', '/readyz', '/metrics'];
/** Vite puts content-hashed files here: they never change, so browsers may keep them for good. */
const HASHED_DIR = '/assets/';
/** How often a miss may rescan the build folder (a rebuild renames the hashed files). */
const RESCAN_MS = 2000;

function listFiles(dir: string): Set<string> {
  const out = new Set<string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const full = join(d, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.isFile()) out.add('/' + relative(dir, full).split(sep).join('/'));
    }
  };
  walk(dir);
  return out;
}

export function applySecurityHeaders(reply: FastifyReply, csp?: string): void {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) void reply.header(k, v);
  if (csp) void reply.header('content-security-policy', csp);
}

export async function registerStaticApp(app: FastifyInstance, distDir: string): Promise<void> {
  const built = existsSync(join(distDir, 'index.html'));
  if (built) {
    // serve:false: only decorate reply.sendFile; routing stays ours (see the comment above).
    await app.register(fastifyStatic, { root: distDir, serve: false, cacheControl: false, etag: true, lastModified: true, dotfiles: 'deny' });
  }
  let files = built ? listFiles(distDir) : new Set<string>();
  let scannedAt = Date.now();

  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const raw = req.url.split('?')[0]!;
    let path: string;
    try {
      path = decodeURIComponent(raw);
    } catch {
      return reply.callNotFound();
    }
    if (SERVER_PREFIXES.some((p) => path === p || path.startsWith(p.endsWith('/') ? p : p + '/'))) return reply.callNotFound();
    if (!built) {
      applySecurityHeaders(reply, PAGE_CSP);
      void reply.header('cache-control', 'no-store');
      return reply.status(503).type('text/html; charset=utf-8').send(notBuiltPage(distDir));
    }
    if (!files.has(path) && Date.now() - scannedAt > RESCAN_MS) {
      files = listFiles(distDir);
      scannedAt = Date.now();
    }
    applySecurityHeaders(reply);
    if (path !== '/' && path !== '/index.html' && files.has(path)) {
      void reply.header('cache-control', path.startsWith(HASHED_DIR) ? 'public, max-age=31536000, immutable' : 'no-cache');
      return reply.sendFile(path.slice(1));
    }
    // A missing file (a stale asset name, a typo'd image) is a 404, not the app's HTML.
    const last = path.slice(path.lastIndexOf('/') + 1);
    if (last.includes('.') && path !== '/index.html') return reply.callNotFound();
    // no-cache: a new build must be picked up on the next load (its assets have new names).
    void reply.header('cache-control', 'no-cache');
    return reply.sendFile('index.html');
  };

  app.get('/', { schema: { hide: true } }, handler);
  app.get('/*', { schema: { hide: true } }, handler);
}
