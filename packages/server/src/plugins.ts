import type { FastifyInstance } from 'fastify';
import type { AppContext } from './api/context.js';
import { dashboardPlugin } from './dashboard/index.js';

export type Plugin = (app: FastifyInstance, ctx: AppContext) => Promise<void> | void;

/** Route plugins beyond the API: the dashboard (sessions, portal links and the web app at `/`). */
export async function loadPlugins(): Promise<Plugin[]> {
  return [dashboardPlugin()];
}
