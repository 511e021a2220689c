import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { access, sha256 } from '../api/auth.js';
import { auditEntry } from '../api/audit.js';
import type { AppContext } from '../api/context.js';
import * as S from '../api/schemas.js';
import { BODY_OPTIONAL } from '../api/json-body.js';
import { createError } from '../core/errors.js';
import { isId } from '../core/ids.js';
import { linkInvalidPage, PAGE_CSP, PORTAL_CSP, portalContinuePage } from './pages.js';
import {
  checkCsrf, clearSessionCookie, isTokenShaped, newSession, newToken, openSession, PORTAL_TTL_DEFAULT_S, PORTAL_TTL_MAX_S,
  readSession, SESSION_TTL_MS, sessionCookie, tokenHash, type SessionRecord,
} from './session.js';
import { applySecurityHeaders } from './static.js';

const PortalSessionIn = Type.Object(
  {
    ttl_seconds: Type.Optional(
      Type.Integer({ minimum: 1, maximum: PORTAL_TTL_MAX_S, description: `how long the link stays valid; default ${PORTAL_TTL_DEFAULT_S} (15 min), at most ${PORTAL_TTL_MAX_S} (24 h)` }),
    ),
  },
  { additionalProperties: false },
);

const SessionOut = Type.Object(
  {
    kind: Type.Union([Type.Literal('admin'), Type.Literal('account')]),
    account_id: Type.Union([Type.String(), Type.Null()]),
    csrf_token: Type.String({ description: 'send it as X-CSRF-Token on every POST, PATCH, PUT and DELETE made with the cookie' }),
    expires_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'DashboardSession' },
);
const SessionIn = Type.Object({ admin_token: Type.String({ minLength: 1, maxLength: 1024 }) }, { additionalProperties: false });

const sessionOut = (s: Pick<SessionRecord, 'accountId' | 'csrfToken' | 'expiresAt'>): Static<typeof SessionOut> => ({
  kind: s.accountId === null ? 'admin' : 'account',
  account_id: s.accountId,
  csrf_token: s.csrfToken,
  expires_at: S.iso(s.expiresAt),
});

/**
 * Sign-in for the dashboard: one-time portal links made by the operator's backend for one
 * account, and the operator's own sign-in with the admin token. Both end in a cookie session.
 */
export async function registerSessionRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const secure = ctx.config.publicUrl.startsWith('https:');
  const cookieMaxAgeS = Math.floor(SESSION_TTL_MS / 1000);

  /** publicUrl as configured; with port 0 (tests, `--port 0`) the port actually bound. */
  const publicBase = (): string => {
    const u = new URL(ctx.config.publicUrl);
    const a = app.server.address();
    if (u.port === '0' && a && typeof a === 'object') u.port = String(a.port);
    return u.href.replace(/\/+$/, '');
  };

  const noStore = (reply: FastifyReply) => void reply.header('cache-control', 'no-store');

  app.post('/v1/accounts/:account/portal-sessions', {
    schema: {
      tags: ['Dashboard'], security: [{ bearer: [] }], summary: 'Create a one-time dashboard sign-in link for an account',
      description: 'The link works once, within `ttl_seconds`, and opens the dashboard signed in to this account. Herald stores only a hash of it.',
      params: S.AccountParams, body: PortalSessionIn,
      response: { 201: S.PortalSession, ...S.errors(400, 401, 403, 404) },
      // The body is optional: none, or an empty one with `Content-Type: application/json`, is `{}`.
      [BODY_OPTIONAL]: true,
    },
    // Credentials before the body is read (see access).
    ...access(ctx, 'admin'),
  }, async (req, reply) => {
    const { account } = req.params as { account: string };
    if (!isId('acc', account) || !(await ctx.store.getAccount(account))) throw createError('account_not_found', account);
    const body = req.body as Static<typeof PortalSessionIn>;
    const ttlS = body.ttl_seconds ?? PORTAL_TTL_DEFAULT_S;
    const token = newToken();
    const expiresAt = Date.now() + ttlS * 1000;
    await ctx.store.createPortalLink(tokenHash(token), account, expiresAt, () => auditEntry(req, account, 'portal_link.created', null, { expires_at: S.iso(expiresAt) }));
    noStore(reply);
    return reply.status(201).send({ url: `${publicBase()}/portal/${token}`, expires_at: S.iso(expiresAt) });
  });

  /** A refused link: a script checking it gets the API's error shape, a person a page that explains. */
  const linkInvalid = (req: FastifyRequest, reply: FastifyReply) => {
    const accept = req.headers.accept ?? '';
    if (accept.includes('application/json') && !accept.includes('text/html')) throw createError('portal_link_invalid');
    void reply.header('content-security-policy', PAGE_CSP);
    return reply.status(401).type('text/html; charset=utf-8').send(linkInvalidPage());
  };

  // GET shows the link's page and spends nothing: a chat preview, a mail scanner or a link
  // checker fetching it must not use up the customer's one-time link (HEAD is not exposed).
  app.get('/portal/:token', { exposeHeadRoute: false, schema: { hide: true } }, async (req, reply) => {
    const { token } = req.params as { token: string };
    applySecurityHeaders(reply);
    noStore(reply);
    const accountId = isTokenShaped(token) ? await ctx.store.peekPortalLink(tokenHash(token)) : null;
    const account = accountId ? await ctx.store.getAccount(accountId) : null;
    if (!account) return linkInvalid(req, reply);
    // Signed in as someone else already: the person chooses, nothing switches by itself (a
    // link someone else made must not silently move this browser into their account).
    const current = await readSession(req, ctx);
    const other = current && current.accountId !== account.id ? current : null;
    const signedInAs = !other ? null : other.accountId === null ? 'as the operator' : `for ${(await ctx.store.getAccount(other.accountId))?.name ?? 'another account'}`;
    void reply.header('content-security-policy', PORTAL_CSP);
    // Under `no-referrer` a browser sends `Origin: null` with the form's post, even to its own
    // origin; `same-origin` lets it name this origin (the page loads nothing from elsewhere).
    void reply.header('referrer-policy', 'same-origin');
    return reply.type('text/html; charset=utf-8').send(portalContinuePage({ accountName: account.name, signedInAs }));
  });

  // The page's form: spends the link and opens the session. Only from this origin (or from no
  // browser at all): a page elsewhere cannot post a link of its own into this browser.
  await app.register(async (scope) => {
    // An HTML form posts `application/x-www-form-urlencoded`; this one has no fields.
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 1024 }, (_req, _body, done) => done(null, {}));
    scope.post('/portal/:token', { bodyLimit: 1024, schema: { hide: true } }, async (req, reply) => {
      const { token } = req.params as { token: string };
      applySecurityHeaders(reply);
      noStore(reply);
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== new URL(publicBase()).origin && req.headers['sec-fetch-site'] !== 'same-origin') {
        throw createError('forbidden', 'a portal link is opened from its own page');
      }
      // A browser that was signed in already (another account, or the operator) switches over:
      // its page asked first.
      const previous = await readSession(req, ctx);
      let sessionToken = '';
      const accountId = !isTokenShaped(token) ? null : await ctx.store.usePortalLink(tokenHash(token), {
        replace: previous?.tokenHash ?? null,
        session: (account) => {
          const made = newSession(ctx, account);
          sessionToken = made.token;
          return made.record;
        },
        audit: (account) => {
          // Who used a link is not known (that is the operator's product), but that one was used is.
          req.principal = { kind: 'account', accountId: account, actor: 'portal_link' };
          return auditEntry(req, account, 'portal_session.opened');
        },
      });
      if (!accountId) return linkInvalid(req, reply);
      void reply.header('set-cookie', sessionCookie(sessionToken, cookieMaxAgeS, secure));
      // 303 to a clean URL: the spent token leaves the address bar and the history.
      return reply.redirect('/', 303);
    });
  });

  app.get('/v1/session', {
    schema: { tags: ['Dashboard'], summary: 'The dashboard session of this browser (cookie)', response: { 200: SessionOut, ...S.errors(401) } },
  }, async (req, reply) => {
    const s = await readSession(req, ctx);
    if (!s) throw createError('unauthorized');
    noStore(reply);
    return sessionOut(s);
  });

  app.post('/v1/session', {
    // The admin token comes in the body, so the body is read before any credential is known:
    // 4 KiB is plenty for it (at most 1024 characters) and all a stranger can make Herald read.
    bodyLimit: 4096,
    schema: { tags: ['Dashboard'], summary: 'Sign the operator in to the dashboard with the admin token', body: SessionIn, response: { 200: SessionOut, ...S.errors(400, 401) } },
  }, async (req, reply) => {
    const { admin_token } = req.body as Static<typeof SessionIn>;
    if (!timingSafeEqual(sha256(admin_token), ctx.adminTokenHash)) throw createError('unauthorized');
    const previous = await readSession(req, ctx);
    if (previous) await ctx.store.deleteSession(previous.tokenHash);
    const { token, record } = await openSession(ctx, null);
    void reply.header('set-cookie', sessionCookie(token, cookieMaxAgeS, secure));
    noStore(reply);
    return sessionOut(record);
  });

  app.delete('/v1/session', {
    bodyLimit: 4096, // takes no body
    schema: { tags: ['Dashboard'], summary: 'Sign out of the dashboard', response: { 204: Type.Null(), ...S.errors(403) } },
  }, async (req, reply) => {
    const s = await readSession(req, ctx);
    if (s) {
      // Otherwise any page could sign the user out (a nuisance rather than a breach, but cheap to stop).
      checkCsrf(req, s);
      await ctx.store.deleteSession(s.tokenHash);
    }
    void reply.header('set-cookie', clearSessionCookie(secure));
    return reply.status(204).send();
  });
}
