// Who may talk to the server. On loopback anyone local may (as in ComfyUI), but only with a local Host header so a
// web page cannot reach it through DNS rebinding; on any other address every request needs the access token.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const TOKEN_COOKIE = 'loragraph_token';

export function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export function generateToken(): string {
  return randomBytes(24).toString('base64url');
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a), y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The token a request carries: Authorization: Bearer, ?token=, or the cookie set when a ?token= page loaded. */
export function requestToken(req: IncomingMessage): { token: string | null; fromQuery: boolean } {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && auth.startsWith('Bearer ')) return { token: auth.slice(7).trim(), fromQuery: false };
  const url = new URL(req.url ?? '/', 'http://x');
  const q = url.searchParams.get('token');
  if (q) return { token: q, fromQuery: true };
  const cookie = req.headers.cookie ?? '';
  for (const part of cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === TOKEN_COOKIE) return { token: decodeURIComponent(v.join('=')), fromQuery: false };
  }
  return { token: null, fromQuery: false };
}

export type AccessDecision = { ok: true; setCookie: boolean } | { ok: false; status: 401 | 403; message: string };

export function checkAccess(req: IncomingMessage, policy: { token: string | null }): AccessDecision {
  if (policy.token) {
    const { token, fromQuery } = requestToken(req);
    if (!token || !safeEqual(token, policy.token)) {
      return { ok: false, status: 401, message: 'this server needs its access token (Authorization: Bearer <token> or ?token=<token>)' };
    }
    return { ok: true, setCookie: fromQuery };
  }
  const hostHeader = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  if (!isLoopback(hostHeader)) return { ok: false, status: 403, message: `requests must address the server as localhost (Host was "${hostHeader}")` };
  const origin = req.headers.origin;
  if (origin && origin !== 'null') {
    try {
      if (!isLoopback(new URL(origin).hostname.replace(/^\[|\]$/g, ''))) return { ok: false, status: 403, message: `cross-origin request from ${origin} refused` };
    } catch {
      return { ok: false, status: 403, message: 'malformed Origin header' };
    }
  }
  return { ok: true, setCookie: false };
}
