import { monitorEventLoopDelay } from 'node:perf_hooks';

const RESOLUTION_MS = 10;

/**
 * How much time this process lost while a timing window was open: the event loop's lateness,
 * sampled every 10 ms and summed (the process descheduled on a loaded machine, a GC pause, a
 * synchronous write). Herald, its receivers and the test share the process, so whatever
 * delayed them shows here.
 *
 * Timing bounds add it to their fixed slack: on a loaded machine they stretch by the time the
 * machine took away, and on an idle one they stay as tight as written. It does not excuse
 * waiting on a timer, a poll or a backlog, which is what those bounds are there to catch: the
 * loop is free while a worker waits.
 */
export function lateness(): { ms(): number; stop(): number } {
  const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  h.enable();
  // Each sample is the interval between two ticks of the sampler: 10 ms when the loop is free.
  const ms = (): number => (h.count ? Math.max(0, (h.mean / 1e6 - RESOLUTION_MS) * h.count) : 0);
  return {
    ms,
    stop() {
      h.disable();
      return ms();
    },
  };
}
