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
export function startClusterJobs(store: Store, config: Config, log: Logger): { stop(): void } {
  const owner = `p_${randomBytes(6).toString('hex')}`;
  const tick = async () => {
    try {
      if (await store.claimJob('retention', owner, HOUR)) {
        const r = await store.purgeOlderThan(Date.now() - config.retentionDays * DAY);
        if (r.deliveries || r.events) log.info({ ...r, retention_days: config.retentionDays }, 'retention purge');
      }
    } catch (e) {
      log.error({ err: e }, 'cluster job failed');
    }
  };
  const first = setTimeout(() => void tick(), 10_000);
  const timer = setInterval(() => void tick(), 5 * 60 * 1000);
  first.unref();
  timer.unref();
  return {
    stop() {
      clearTimeout(first);
      clearInterval(timer);
    },
  };
}
