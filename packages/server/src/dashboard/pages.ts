import { createHash } from 'node:crypto';

/**
 * The few pages the server renders itself (a spent sign-in link, a dashboard that was never
 * built). They carry the same strict CSP as the app; their one inline stylesheet is allowed
 * by its hash, so no 'unsafe-inline' is ever needed.
 */

export const DASHBOARD_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** Headers on every dashboard response (the app, its assets and these pages). */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': DASHBOARD_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // For browsers that predate frame-ancestors.
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
};

const STYLE = `
:root{color-scheme:light;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
body{margin:0;min-height:100vh;display:grid;place-items:center;background:#f4f5f8;color:#1d2433}
main{max-width:34rem;margin:1.5rem;padding:2rem 2.25rem;background:#fff;border:1px solid #dfe3ea;border-radius:12px;box-shadow:0 1px 2px rgba(16,24,40,.06)}
h1{font-size:1.25rem;margin:0 0 .75rem}
p{line-height:1.55;margin:.5rem 0;color:#3a4356}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f1f3f7;padding:.1rem .35rem;border-radius:4px;font-size:.92em}
a{color:#3b4fd8}
.mark{display:inline-block;width:.7rem;height:.7rem;border-radius:3px;background:#4f5ee8;margin-right:.5rem}
.brand{font-weight:600;color:#4a5266;font-size:.9rem;margin-bottom:1.25rem}
`.trim();
const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');

/** The CSP of these pages: the app's, plus exactly this stylesheet. */
export const PAGE_CSP = DASHBOARD_CSP.replace("style-src 'self'", `style-src 'self' 'sha256-${STYLE_HASH}'`);

/** The one inline script: the portal page goes on by itself when nothing is in the way. */
const CONTINUE_SCRIPT = "document.getElementById('continue').submit();";
/** PAGE_CSP, plus exactly that script. */
export const PORTAL_CSP = PAGE_CSP.replace("script-src 'self'", `script-src 'self' 'sha256-${createHash('sha256').update(CONTINUE_SCRIPT).digest('base64')}'`);

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** `body` is trusted HTML written in this file; `title` is escaped. */
function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>${escapeHtml(title)} · Herald</title><style>${STYLE}</style></head>
<body><main><div class="brand"><span class="mark" aria-hidden="true"></span>Herald · Webhooks</div>${body}</main></body></html>`;
}

export const linkInvalidPage = (): string =>
  page(
    'Sign-in link not valid',
    `<h1>This sign-in link can’t be used</h1>
<p>The link is invalid, has already been used, or has expired. Sign-in links work once and only for a short time, to keep your account safe.</p>
<p>Go back to the app you came from and open Webhooks settings again to get a fresh link.</p>`,
  );

/**
 * A valid portal link, before it is spent: GET only shows this page, so a chat preview or a
 * mail scanner that fetches the link does not use it up. The form POSTs back to the same
 * address, which spends the link; it is sent by the page's script at once, unless this browser
 * is signed in as someone else (another account, or the operator): then the person chooses.
 */
export function portalContinuePage(o: { accountName: string; signedInAs: string | null }): string {
  const name = escapeHtml(o.accountName);
  const form = `<form id="continue" method="post"><p><button type="submit">Continue to ${name}</button></p></form>`;
  if (o.signedInAs === null) {
    return page('Opening webhook settings', `<h1>Opening the webhook settings of ${name}…</h1>${form}<script>${CONTINUE_SCRIPT}</script>`);
  }
  return page(
    'Switch account?',
    `<h1>Open the webhook settings of ${name}?</h1>
<p>This browser is signed in to the webhook settings ${escapeHtml(o.signedInAs)}. Continuing signs it out there and into ${name}.</p>
<p>If you did not ask for this link, close this page.</p>${form}`,
  );
}

export const notBuiltPage = (distDir: string): string =>
  page(
    'Dashboard not built',
    `<h1>The dashboard hasn’t been built yet</h1>
<p>Herald’s API is running, but the web dashboard files were not found in <code>${escapeHtml(distDir)}</code>.</p>
<p>Build it from the repository root with <code>npm run build</code> (or only the dashboard: <code>npm run build -w packages/dashboard</code>), then restart Herald.</p>
<p>The API itself works meanwhile: see <a href="/docs">/docs</a>.</p>`,
  );
