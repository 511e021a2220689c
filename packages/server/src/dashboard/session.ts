import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { sha256, type Principal, type PrincipalSource } from '../api/auth.js';
import type { AppContext } from '../api/context.js';
import { createError } from '../core/errors.js';
import type { SessionRow } from '../store/store.js';

/**
 * Dashboard sessions. The browser holds a random token in an HttpOnly cookie; the database
 * holds only its SHA-256, so a leaked database (or backup) opens no session. Every
 * state-changing request made with the cookie must also carry the session's CSRF token in
 * `X-CSRF-Token`, which a page on another origin cannot read.
 */

export const SESSION_COOKIE = 'herald_session';
/** A working day: long enough not to interrupt a debugging session, short enough that a forgotten tab dies. */
export const SESSION_TTL_MS = 8 * 60 * 60 * 1000; // 8 h
export const PORTAL_TTL_DEFAULT_S = 15 * 60; // 15 min: the link is meant to be opened right after it is made
export const PORTAL_TTL_MAX_S = 24 * 60 * 60; // 24 h

/** 32 random bytes, base64url (43 characters): unguessable, and URL- and cookie-safe as is. */
export const newToken = (): string => randomBytes(32).toString('base64url');
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;
export const isTokenShaped = (s: string): boolean => TOKEN_SHAPE.test(s);
export const tokenHash = (token: string): string => sha256(token).toString('hex');

/** Methods that change state; only these need the CSRF header. */
const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export interface SessionRecord extends SessionRow {
  /** Operators' sessions: which admin token opened it (api/auth.ts adminSessionTag); null for account sessions. */
  adminTag: string | null;
}

/** The value of one cookie, or null. Only the first occurrence counts. */
export function readCookie(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    let v = part.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
    return v;
  }
  return null;
}

export function sessionCookie(token: string, maxAgeS: number, secure: boolean): string {
  // SameSite=Strict: no other site can make the browser send it, which backs up the CSRF check.
  return `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${secure ? '; Secure' : ''}`;
}

export function clearSessionCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`;
}

/** The live session named by the request's cookie, or null (no cookie, unknown, expired). */
export async function readSession(request: FastifyRequest, ctx: AppContext): Promise<SessionRecord | null> {
  const token = readCookie(request.headers.cookie, SESSION_COOKIE);
  if (!token || !isTokenShaped(token)) return null;
  const hash = tokenHash(token);
  const s = await ctx.store.getSession(hash);
  if (!s) return null;
  // An operator's session opened with an admin token that has since been rotated (or from
  // before sessions were bound to one) is no session.
  if (s.accountId === null && (s.adminTag === null || !sameSecret(s.adminTag, ctx.adminSessionTag))) return null;
  return { tokenHash: hash, ...s };
}

/** A new session of an account (or, with null, of the operator), not stored yet: its cookie token and its row. */
export function newSession(ctx: AppContext, accountId: string | null, now = Date.now()): { token: string; record: SessionRecord } {
  const token = newToken();
  const record: SessionRecord = {
    tokenHash: tokenHash(token), accountId, csrfToken: newToken(), expiresAt: now + SESSION_TTL_MS,
    adminTag: accountId === null ? ctx.adminSessionTag : null,
  };
  return { token, record };
}

export async function openSession(ctx: AppContext, accountId: string | null, now = Date.now()): Promise<{ token: string; record: SessionRecord }> {
  const made = newSession(ctx, accountId, now);
  await ctx.store.createSession(made.record, now);
  return made;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Throws csrf_failed unless a state-changing request carries the session's CSRF token. */
export function checkCsrf(request: FastifyRequest, session: SessionRecord): void {
  if (!UNSAFE_METHODS.has(request.method)) return;
  const sent = request.headers['x-csrf-token'];
  if (typeof sent !== 'string' || !sameSecret(sent, session.csrfToken)) throw createError('csrf_failed');
}

/**
 * The principal source for cookie sessions. It runs after the bearer source, which answers
 * for every request that has an Authorization header, so API clients never touch cookies.
 * The CSRF check lives here, where the cookie is actually used as the credential: a request
 * that authenticates another way needs no CSRF token.
 */
export const sessionPrincipal: PrincipalSource = async (request, ctx): Promise<Principal | null> => {
  const s = await readSession(request, ctx);
  if (!s) return null;
  checkCsrf(request, s);
  return s.accountId === null ? { kind: 'admin', actor: 'operator_session' } : { kind: 'account', accountId: s.accountId, actor: 'portal_session' };
};
