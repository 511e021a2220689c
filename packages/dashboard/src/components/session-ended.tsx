import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, type Session } from '../api';
import { IconAlert } from './icons';
import { Button } from './ui';

/**
 * Shown over the current screen when a request answers 401 (the 8-hour session expired, or
 * someone signed out in another tab). The screen stays mounted under it, so a form keeps the
 * URL, headers and the secret the customer may already have copied into their endpoint: they
 * sign in again in another tab, come back, and carry on. Not modal, so the form stays readable
 * and its values copyable meanwhile.
 */
export function SessionEnded({ kind, onResume }: {
  /** How the ended session was opened, which decides how to get back in. */
  kind: Session['kind'];
  /** The browser has a session again: answers false when it cannot carry on this page (another account). */
  onResume: (s: Session) => boolean;
}) {
  const box = useRef<HTMLDivElement>(null);
  const [checking, setChecking] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  // Said once, when it appears: later 401s (a history refresh) leave the focus where it is.
  useEffect(() => box.current?.focus(), []);

  const check = async () => {
    setChecking(true);
    setProblem(null);
    try {
      if (!onResume(await api.session())) {
        setProblem('This browser is now signed in to another account. Copy what you need from this page first, then reload it to carry on in that account.');
      }
    } catch (e) {
      setProblem(e instanceof ApiError && e.status === 401 ? 'This browser is not signed in yet. Sign in again in another tab first, as described above.' : (e as Error).message);
    } finally {
      setChecking(false);
    }
  };

  return (
    <div ref={box} class="session-ended" role="alertdialog" aria-labelledby="session-ended-title" aria-describedby="session-ended-body" tabIndex={-1}>
      <IconAlert class="notice-icon" />
      <div class="notice-body">
        <h2 class="notice-title" id="session-ended-title">Your session has ended</h2>
        <div id="session-ended-body">
          <p>Nothing on this page is lost: what you typed stays here, and you can still select and copy it. What you just tried to do was not done.</p>
          {kind === 'account' ? (
            <p>To sign in again, open <em>Settings › Integrations &amp; Publishing › Webhooks</em> in your app in another tab: it signs you in with a new link. Then come back to this tab and choose Continue.</p>
          ) : (
            <p>
              To sign in again, open the{' '}
              <a href="/" target="_blank" rel="noopener">sign-in page in a new tab</a> and enter the admin token. Then come back to this tab and choose Continue.
            </p>
          )}
        </div>
        {problem && <p class="text-danger" role="alert">{problem}</p>}
        <div class="button-row">
          <Button variant="primary" size="sm" busy={checking} onClick={check}>
            Continue
          </Button>
        </div>
      </div>
    </div>
  );
}
