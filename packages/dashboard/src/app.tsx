import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, ApiError, onSessionLost, setCsrfToken, type Account, type EventType, type Meta, type Session } from './api';
import type { ScreenCtx } from './context';
import { Shell } from './components/layout';
import { SessionEnded } from './components/session-ended';
import { Link, Notice, Spinner, Toast } from './components/ui';
import { navigate, parseRoute, paths, useLocation } from './router';
import { DeliveryDetail } from './screens/delivery-detail';
import { Activity } from './screens/activity';
import { History } from './screens/history';
import { PlanRequired } from './screens/plan-required';
import { AccountPicker, SignIn } from './screens/sign-in';
import { WebhookForm } from './screens/webhook-form';
import { WebhooksList } from './screens/webhooks-list';

/**
 * The shell: finds out who is signed in (GET /v1/session), which account to show (the
 * session's, or the operator's pick), and routes to a screen. The operator's pick is kept in
 * sessionStorage: an account id, not a credential. When the session ends under a screen, the
 * screen stays (with whatever was typed in it) and SessionEnded says how to get back in.
 */

const PICK_KEY = 'herald.account';

type State =
  | { kind: 'loading' }
  | { kind: 'signed-out'; notice: string | null }
  | { kind: 'signed-in'; session: Session };

export function App() {
  const [state, setState] = useState<State>({ kind: 'loading' });
  const [accountId, setAccountId] = useState<string | null>(null);
  const [account, setAccount] = useState<Account | null>(null);
  const [accountError, setAccountError] = useState<string | null>(null);
  const [meta, setMeta] = useState<Meta | null>(null);
  const [eventTypes, setEventTypes] = useState<EventType[] | null>(null);
  const [eventTypesError, setEventTypesError] = useState<string | null>(null);
  const [toast, setToast] = useState<string | null>(null);
  const [planBlocked, setPlanBlocked] = useState(false);
  /** A request answered 401: the session is gone, the screen stays. */
  const [sessionEnded, setSessionEnded] = useState(false);
  const path = useLocation();

  const signedIn = (s: Session) => {
    setCsrfToken(s.csrf_token);
    setSessionEnded(false);
    setState({ kind: 'signed-in', session: s });
    const id = s.kind === 'account' ? s.account_id : sessionStorage.getItem(PICK_KEY);
    setAccountId(id);
  };

  useEffect(() => {
    onSessionLost(() => {
      setCsrfToken(null);
      setSessionEnded(true);
    });
    api
      .session()
      .then(signedIn)
      .catch((e: ApiError) => setState({ kind: 'signed-out', notice: e.status === 401 ? null : e.message }));
  }, []);

  /** The event catalog, for the form's checkboxes and the history's filter. */
  const loadEventTypes = () => {
    setEventTypes(null);
    setEventTypesError(null);
    api
      .eventTypes()
      .then((r) => setEventTypes(r.data))
      .catch((e: ApiError) => {
        setEventTypes([]);
        setEventTypesError(e.message);
      });
  };

  useEffect(() => {
    if (state.kind !== 'signed-in') return;
    api.meta().then(setMeta).catch(() => setMeta(null));
    loadEventTypes();
  }, [state.kind]);

  useEffect(() => {
    setAccount(null);
    setAccountError(null);
    setPlanBlocked(false);
    if (!accountId || state.kind !== 'signed-in') return;
    api
      .account(accountId)
      .then((a) => {
        setAccount(a);
        setPlanBlocked(a.plan === 'free');
      })
      .catch((e: ApiError) => {
        if (e.status === 404 && state.session.kind === 'admin') {
          // A remembered pick that no longer exists: choose again.
          sessionStorage.removeItem(PICK_KEY);
          setAccountId(null);
        } else setAccountError(e.message);
      });
  }, [accountId, state.kind]);

  // After an in-app navigation, move focus to the new content (as a page load would), so
  // keyboard and screen-reader users start at the top of the new screen.
  const lastPath = useRef(path);
  useEffect(() => {
    if (lastPath.current === path) return;
    lastPath.current = path;
    document.getElementById('main')?.focus({ preventScroll: true });
  }, [path]);

  useEffect(() => {
    const title = { list: 'Webhooks', new: 'Add webhook', edit: 'Edit webhook', history: 'Webhook History', delivery: 'Delivery', activity: 'Activity', 'not-found': 'Not found' }[parseRoute(path).name];
    document.title = `${title} · Settings`;
  }, [path]);

  const signOut = async () => {
    try {
      await api.signOut();
    } catch {
      /* the cookie is cleared by the server either way; nothing to tell the user */
    }
    setCsrfToken(null);
    sessionStorage.removeItem(PICK_KEY);
    setAccountId(null);
    setSessionEnded(false);
    setState({ kind: 'signed-out', notice: 'You are signed out.' });
    navigate(paths.list(), { replace: true });
  };

  const ctx = useMemo<ScreenCtx | null>(
    () =>
      account && accountId
        ? { accountId, account, meta, eventTypes, eventTypesError, reloadEventTypes: loadEventTypes, toast: setToast, planRequired: () => setPlanBlocked(true) }
        : null,
    [account, accountId, meta, eventTypes, eventTypesError],
  );

  /**
   * The browser signed in again (in another tab): carry on with the screen as it is, unless
   * the new session belongs to another account, which cannot see this one.
   */
  const resume = (s: Session): boolean => {
    if (s.kind === 'account' && s.account_id !== accountId) return false;
    setCsrfToken(s.csrf_token);
    setSessionEnded(false);
    setState({ kind: 'signed-in', session: s });
    return true;
  };

  if (state.kind === 'loading') return <div class="boot"><Spinner label="Loading" /></div>;
  if (state.kind === 'signed-out') return <SignIn onSignedIn={signedIn} notice={state.notice} />;
  const session = state.session;
  // The account picker holds nothing typed worth keeping: its reads lead to the sign-in page.
  if (sessionEnded && !accountId) return <SignIn onSignedIn={signedIn} notice="Your session has ended. Sign in again below." />;
  if (session.kind === 'admin' && !accountId) {
    return (
      <AccountPicker
        onSignOut={signOut}
        onPick={(a) => {
          sessionStorage.setItem(PICK_KEY, a.id);
          setAccountId(a.id);
          navigate(paths.list());
        }}
      />
    );
  }
  const switchAccount =
    session.kind === 'admin'
      ? () => {
          sessionStorage.removeItem(PICK_KEY);
          setAccountId(null);
        }
      : undefined;

  const route = parseRoute(path);
  let screen;
  if (accountError) screen = <Notice tone="danger" role="alert" title="Could not load your account">{accountError}</Notice>;
  else if (!ctx) screen = <Spinner label="Loading account" />;
  else if (planBlocked) screen = <PlanRequired account={ctx.account} meta={meta} />;
  else {
    switch (route.name) {
      case 'list':
        screen = <WebhooksList ctx={ctx} />;
        break;
      case 'new':
        screen = <WebhookForm ctx={ctx} webhookId={null} key="new" />;
        break;
      case 'edit':
        screen = <WebhookForm ctx={ctx} webhookId={route.webhookId} key={route.webhookId} />;
        break;
      case 'history':
        screen = <History ctx={ctx} webhookId={route.webhookId} key={route.webhookId} />;
        break;
      case 'activity':
        screen = <Activity ctx={ctx} />;
        break;
      case 'delivery':
        screen = <DeliveryDetail ctx={ctx} webhookId={route.webhookId} deliveryId={route.deliveryId} key={route.deliveryId} />;
        break;
      default:
        screen = (
          <Notice tone="warning" title="Page not found">
            <p>
              There is nothing at this address. <Link href={paths.list()}>Go to Webhooks</Link>.
            </p>
          </Notice>
        );
    }
  }

  return (
    <Shell session={session} account={account} onSignOut={signOut} onSwitchAccount={switchAccount}>
      {/* Before the screen, in a slot of its own, so showing it never re-creates the screen. */}
      {sessionEnded ? <SessionEnded kind={session.kind} onResume={resume} /> : null}
      {screen}
      <Toast message={toast} onDone={() => setToast(null)} />
    </Shell>
  );
}
