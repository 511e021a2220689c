import type { Account, EventType, Meta } from './api';

/** What every screen needs from the shell: whose webhooks, the server's facts, and feedback hooks. */
export interface ScreenCtx {
  accountId: string;
  account: Account;
  meta: Meta | null;
  eventTypes: EventType[] | null;
  /** A short confirmation after an action (saved, deleted), announced politely. */
  toast: (message: string) => void;
  /** The API answered plan_required: the shell shows the upgrade explanation instead. */
  planRequired: () => void;
}
