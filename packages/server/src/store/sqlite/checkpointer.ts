import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * Checkpoints of a WAL-mode SQLite file on a thread of their own.
 *
 * By default SQLite checkpoints inside the COMMIT that takes the WAL past 1000 pages: that
 * commit copies the pages into the database file and fsyncs it, on the event loop, even for a
 * claim or an outcome write that asked not to wait for the disk (synchronous=NORMAL). Here the
 * executor turns automatic checkpoints off and this thread, with its own connection, runs
 * PASSIVE checkpoints instead: they copy what they can without blocking readers or writers,
 * and the fsync waits on this thread. Durability is unchanged (commits still fsync the WAL as
 * `synchronous` says); only where the copying happens moves.
 *
 * The thread is plain JavaScript evaluated from a string, so it runs the same from the built
 * files and from TypeScript sources under the test runner.
 */
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 1000');
// A checkpoint syncs the WAL before it copies and the database file after, at NORMAL and FULL
// alike; set here rather than left to the build's default.
db.pragma('synchronous = NORMAL');
let busy = false;
const checkpoint = (mode) => {
  try {
    const [r] = db.pragma('wal_checkpoint(' + mode + ')');
    return r;
  } catch (e) {
    return { error: String(e && e.message || e) };
  }
};
const tick = () => {
  if (busy) return;
  busy = true;
  let r = checkpoint('PASSIVE');
  // Writers never paused long enough for the copy to finish and the WAL to start over:
  // RESTART waits until it can, so the file stops growing. Briefly: while it waits it holds
  // the write lock, and the main thread's next transaction would wait on its event loop.
  if (r && !r.error && r.log > workerData.restartFrames && r.checkpointed < r.log) {
    db.pragma('busy_timeout = 50');
    r = checkpoint('RESTART');
    db.pragma('busy_timeout = 1000');
  }
  busy = false;
  parentPort.postMessage({ type: 'checkpointed', result: r });
};
const timer = setInterval(tick, workerData.everyMs);
parentPort.on('message', (m) => {
  if (m.type === 'now') tick();
  if (m.type === 'close') {
    clearInterval(timer);
    db.close();
    parentPort.close();
  }
});
`;

export interface CheckpointerOptions {
  /** How often to checkpoint. */
  everyMs: number;
  /** WAL size (in pages) past which a checkpoint waits for writers to pause (RESTART). */
  restartFrames: number;
}

export const CHECKPOINT_DEFAULTS: CheckpointerOptions = { everyMs: 200, restartFrames: 20_000 };

/** Checkpoints failing in a row (busy, read-only file…) before the thread hands back to commits. */
const MAX_FAILED_CHECKPOINTS = 5;

export interface CheckpointResult {
  busy?: number;
  log?: number;
  checkpointed?: number;
  error?: string;
}

export class Checkpointer {
  readonly #worker: Worker;
  #closed = false;
  /** The most recent result, for tests and diagnostics. */
  last: CheckpointResult | null = null;
  /** Called once if the thread stops by itself: the owner must checkpoint on its own again. */
  onLost: (() => void) | null = null;

  constructor(path: string, opts: CheckpointerOptions = CHECKPOINT_DEFAULTS) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.#worker = new Worker(THREAD_SOURCE, { eval: true, workerData: { driver, path, ...opts }, name: 'herald-checkpoint' });
    this.#worker.unref(); // never what keeps a process alive
    let failed = 0;
    this.#worker.on('message', (m: { type: string; result?: CheckpointResult }) => {
      if (m.type !== 'checkpointed') return;
      this.last = m.result ?? null;
      failed = this.last?.error ? failed + 1 : 0;
      // A thread that cannot checkpoint is no better than none: stop it, so commits checkpoint
      // again (onLost) and the WAL cannot grow without bound.
      if (failed >= MAX_FAILED_CHECKPOINTS) void this.#worker.terminate();
    });
    this.#worker.on('error', () => {}); // reported through 'exit'
    this.#worker.on('exit', () => {
      if (!this.#closed) this.onLost?.();
      this.#closed = true;
    });
  }

  /** Checkpoint now rather than at the next tick (tests). */
  nudge(): void {
    if (!this.#closed) this.#worker.postMessage({ type: 'now' });
  }

  /** Resolves with the next checkpoint's result (tests). */
  next(): Promise<CheckpointResult | null> {
    return new Promise((resolve) => {
      const on = (m: { type: string; result?: CheckpointResult }): void => {
        if (m.type !== 'checkpointed') return;
        this.#worker.off('message', on);
        resolve(m.result ?? null);
      };
      this.#worker.on('message', on);
    });
  }

  /** End the thread as a crash would, without the close handshake (tests). */
  async kill(): Promise<void> {
    await this.#worker.terminate();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const exited = new Promise<void>((r) => this.#worker.once('exit', () => r()));
    this.#worker.postMessage({ type: 'close' });
    const timer = setTimeout(() => void this.#worker.terminate(), 2000);
    await exited;
    clearTimeout(timer);
  }
}
