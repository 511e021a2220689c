import type { FastifyInstance } from 'fastify';
import type { AppContext } from './api/context.js';

export type Plugin = (app: FastifyInstance, ctx: AppContext) => Promise<void> | void;

/** Route plugins beyond the API (the dashboard). */
export async function loadPlugins(): Promise<Plugin[]> {
  return [];
}
