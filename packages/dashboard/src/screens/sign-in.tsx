import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, type Account, type Session } from '../api';
import { IconChevronRight, IconLock, IconWebhook } from '../components/icons';
import { Badge, Button, Notice, Spinner } from '../components/ui';

/**
 * Customers arrive through a one-time link from their app (a portal link), already signed in.
 * This screen is for everyone else: the operator with the admin token, or a customer whose
 * session ended, who is told how to get back in.
 */
export function SignIn({ onSignedIn, notice }: { onSignedIn: (s: Session) => void; notice: string | null }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!token.trim()) {
      setError('Enter the admin token.');
      input.current?.focus();
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const s = await api.signIn(token.trim());
      setToken('');
      onSignedIn(s);
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? 'That admin token is not valid. Check it and try again.' : (err as Error).message);
      input.current?.focus();
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="auth-page">
      <main class="auth-card" id="main">
        <div class="auth-brand">
          <span class="brand-mark brand-mark-lg" aria-hidden="true"><IconWebhook /></span>
          <span class="brand-name">Herald</span>
        </div>
        <h1 class="auth-title">Sign in to Webhooks</h1>
        {notice && <Notice tone="warning" role="status">{notice}</Notice>}
        <p class="auth-lead">
          <strong>Customers:</strong> open <em>Settings › Integrations &amp; Publishing › Webhooks</em> in your app. It signs you in here
          automatically with a one-time link.
        </p>
        <form class="auth-form" onSubmit={submit} noValidate>
          <p class="auth-lead"><strong>Operators:</strong> sign in with the admin token printed when Herald first started.</p>
          <div class="field">
            <label for="admin-token" class="label">Admin token</label>
            <input
              ref={input}
              id="admin-token"
              class={`input mono ${error ? 'is-invalid' : ''}`}
              type="password"
              autocomplete="off"
              spellcheck={false}
              value={token}
              onInput={(e) => setToken((e.target as HTMLInputElement).value)}
              aria-invalid={error ? 'true' : undefined}
              aria-describedby={error ? 'admin-token-error' : 'admin-token-hint'}
            />
            {error ? (
              <p class="field-error" id="admin-token-error" role="alert">{error}</p>
            ) : (
              <p class="hint" id="admin-token-hint">Herald keeps only a session cookie in this browser, never the token itself.</p>
            )}
          </div>
          <Button type="submit" variant="primary" busy={busy} class="btn-block">
            <IconLock />
            Sign in
          </Button>
        </form>
      </main>
    </div>
  );
}

/** After the operator signs in: which customer's webhooks to look at. */
export function AccountPicker({ onPick, onSignOut }: { onPick: (a: Account) => void; onSignOut: () => void }) {
  const [accounts, setAccounts] = useState<Account[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [filter, setFilter] = useState('');
  const [loadingMore, setLoadingMore] = useState(false);

  const load = async (after?: string) => {
    try {
      const page = await api.accounts(after);
      setAccounts((prev) => [...(after ? prev ?? [] : []), ...page.data]);
      setCursor(page.next_cursor);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  useEffect(() => void load(), []);

  const q = filter.trim().toLowerCase();
  const shown = (accounts ?? []).filter((a) => !q || a.name.toLowerCase().includes(q) || a.id.toLowerCase().includes(q));

  return (
    <div class="auth-page">
      <main class="auth-card auth-card-wide" id="main">
        <div class="auth-brand">
          <span class="brand-mark brand-mark-lg" aria-hidden="true"><IconWebhook /></span>
          <span class="brand-name">Herald</span>
          <Badge tone="warning">Operator</Badge>
        </div>
        <h1 class="auth-title">Choose an account</h1>
        <p class="auth-lead">You are signed in as the operator. Pick the customer account whose webhooks you want to see.</p>
        {error && <Notice tone="danger" role="alert">{error}</Notice>}
        {accounts === null && !error && <Spinner label="Loading accounts" />}
        {accounts !== null && (
          <>
            <div class="field">
              <label class="label" for="account-filter">Search accounts</label>
              <input id="account-filter" class="input" type="search" placeholder="Name or id" value={filter} onInput={(e) => setFilter((e.target as HTMLInputElement).value)} />
            </div>
            {shown.length === 0 ? (
              <p class="muted">{accounts.length === 0 ? 'There are no accounts yet. Create one with POST /v1/accounts.' : 'No account matches.'}</p>
            ) : (
              <ul class="account-list" aria-label="Accounts">
                {shown.map((a) => (
                  <li key={a.id}>
                    <button type="button" class="account-item" onClick={() => onPick(a)}>
                      <span class="avatar" aria-hidden="true">{(a.name.trim()[0] ?? '?').toUpperCase()}</span>
                      <span class="account-item-text">
                        <span class="account-item-name">{a.name}</span>
                        <span class="mono small muted">{a.id}</span>
                      </span>
                      <Badge tone={a.plan === 'free' ? 'neutral' : 'brand'}>{a.plan}</Badge>
                      <IconChevronRight />
                    </button>
                  </li>
                ))}
              </ul>
            )}
            {cursor && (
              <Button
                busy={loadingMore}
                onClick={async () => {
                  setLoadingMore(true);
                  await load(cursor);
                  setLoadingMore(false);
                }}
              >
                Load more accounts
              </Button>
            )}
          </>
        )}
        <p class="auth-footer">
          <Button variant="ghost" size="sm" onClick={onSignOut}>Sign out</Button>
        </p>
      </main>
    </div>
  );
}
