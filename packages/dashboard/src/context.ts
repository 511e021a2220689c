import type { Account, EventType, Meta } from './api';

/** What every screen needs from the shell: whose webhooks, the server's facts, and feedback hooks. */
export interface ScreenCtx {
  accountId: string;
  account: Account;
  meta: Meta | null;
  /** null while loading; empty when the request failed (see eventTypesError). */
  eventTypes: EventType[] | null;
  /** Why the event types could not be loaded, or null. */
  eventTypesError: string | null;
  /** Ask for the event types again, after eventTypesError. */
  reloadEventTypes: () => void;
  /** A short confirmation after an action (saved, deleted), announced politely. */
  toast: (message: string) => void;
  /** The API answered plan_required: the shell shows the upgrade explanation instead. */
  planRequired: () => void;
}
