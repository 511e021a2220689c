import { fileURLToPath } from 'node:url';
import type { Plugin } from '../plugins.js';
import { registerSessionRoutes } from './routes.js';
import { sessionPrincipal } from './session.js';
import { registerStaticApp } from './static.js';

/**
 * The dashboard, as a route plugin: cookie sessions (portal links, operator sign-in), the
 * principal source that turns a session cookie into a Principal with CSRF enforced, and the
 * built web app at `/`. The web app itself talks only to the public API.
 */

/** packages/dashboard/dist, seen from src/dashboard (tests) and dist/dashboard (built) alike. */
export const DEFAULT_DIST_DIR = fileURLToPath(new URL('../../../dashboard/dist/', import.meta.url));

export interface DashboardOptions {
  /** Where the built app lives; defaults to the workspace's packages/dashboard/dist. */
  distDir?: string;
}

export function dashboardPlugin(options: DashboardOptions = {}): Plugin {
  const distDir = (options.distDir ?? DEFAULT_DIST_DIR).replace(/[/\\]+$/, '');
  return async (app, ctx) => {
    // After the bearer source: a request with Authorization never looks at cookies.
    if (!ctx.principalSources.includes(sessionPrincipal)) ctx.principalSources.push(sessionPrincipal);
    // Operator sessions opened with another admin token are refused (session.ts); deleting them
    // at start-up keeps them from working again should the old token come back (a rollback).
    // Only at start-up: a process still running with the old token during a rolling restart
    // must not delete the sessions opened with the new one.
    await ctx.store.endAdminSessionsExcept(ctx.adminSessionTag);
    await registerSessionRoutes(app, ctx);
    await registerStaticApp(app, distDir);
  };
}
