import { useEffect, useState } from 'preact/hooks';

/**
 * A tiny history router: the server answers every non-API path with index.html, so these
 * URLs survive a reload and can be bookmarked or shared with a teammate.
 */

export type Route =
  | { name: 'list' }
  | { name: 'new' }
  | { name: 'edit'; webhookId: string }
  | { name: 'history'; webhookId: string }
  | { name: 'delivery'; webhookId: string; deliveryId: string }
  | { name: 'activity' }
  | { name: 'not-found' };

export const BASE = '/settings/webhooks';

export function parseRoute(pathname: string): Route {
  const p = pathname.replace(/\/+$/, '') || '/';
  if (p === '/' || p === '/settings' || p === BASE) return { name: 'list' };
  if (p === `${BASE}/new`) return { name: 'new' };
  if (p === `${BASE}/activity`) return { name: 'activity' };
  const m = /^\/settings\/webhooks\/([A-Za-z0-9_]+)(?:\/(history)(?:\/([A-Za-z0-9_]+))?)?$/.exec(p);
  if (!m) return { name: 'not-found' };
  const [, webhookId, history, deliveryId] = m as unknown as [string, string, string | undefined, string | undefined];
  if (deliveryId) return { name: 'delivery', webhookId, deliveryId };
  if (history) return { name: 'history', webhookId };
  return { name: 'edit', webhookId };
}

export const paths = {
  list: () => BASE,
  new: () => `${BASE}/new`,
  activity: () => `${BASE}/activity`,
  edit: (id: string) => `${BASE}/${id}`,
  history: (id: string) => `${BASE}/${id}/history`,
  delivery: (id: string, d: string) => `${BASE}/${id}/history/${d}`,
};

const listeners = new Set<() => void>();

export function navigate(to: string, opts: { replace?: boolean } = {}): void {
  if (to === location.pathname + location.search) return;
  if (opts.replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  for (const l of listeners) l();
  // A new screen starts at the top, like a page load would.
  window.scrollTo(0, 0);
}

export function useLocation(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const update = () => setPath(location.pathname);
    listeners.add(update);
    window.addEventListener('popstate', update);
    return () => {
      listeners.delete(update);
      window.removeEventListener('popstate', update);
    };
  }, []);
  return path;
}

/** Left clicks on internal links stay in the app; modified clicks (new tab) behave as usual. */
export function onLinkClick(e: MouseEvent, href: string): void {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(href);
}
