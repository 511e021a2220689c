import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from './config/load.js';
import type { Store } from './store/store.js';

const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;

/**
 * Jobs that must run once per cluster, whatever the number of processes: each process tries
 * every few minutes, and store.claimJob lets exactly one win per period. Lease recovery needs
 * no job: an expired lease makes its delivery claimable again by any worker.
 */
export function startClusterJobs(store: Store, config: Config, log: Logger): { stop(): Promise<void> } {
  const everyMs = HOUR;
  const renewMs = everyMs / 4;
  const owner = `p_${randomBytes(6).toString('hex')}`;
  let stopping = false;
  let running: Promise<void> | null = null;
  const tick = async () => {
    try {
      if (await store.claimJob('retention', owner, everyMs)) {
        // Checked between chunks, so a shutdown never waits for a whole backlog of purging;
        // what is left is purged by the next run, wherever it runs. A run that outlasts the
        // period keeps its claim, or a second process would start purging beside it.
        let renewed = Date.now();
        const between = (): boolean => {
          if (Date.now() - renewed >= renewMs) {
            renewed = Date.now();
            void store.renewJob('retention', owner, everyMs).catch(() => {});
          }
          return stopping;
        };
        const r = await store.purgeOlderThan(Date.now() - config.retentionDays * DAY, undefined, between);
        if (r.deliveries || r.events) log.info({ ...r, retention_days: config.retentionDays }, 'retention purge');
      }
    } catch (e) {
      if (!stopping) log.error({ err: e }, 'cluster job failed');
    }
  };
  const start = () => {
    if (running || stopping) return;
    running = tick().finally(() => (running = null));
  };
  const first = setTimeout(start, 10_000);
  const timer = setInterval(start, 5 * 60 * 1000);
  first.unref();
  timer.unref();
  return {
    /** Resolves when no job is running, so the caller can close the store under it safely. */
    async stop() {
      stopping = true;
      clearTimeout(first);
      clearInterval(timer);
      await running;
    },
  };
}
