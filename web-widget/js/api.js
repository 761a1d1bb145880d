// The one way pages talk to the gateway: JSON in and out, the bearer token from localStorage, and every
// error answer ({"error":{"code","message"}}) turned into a thrown ApiError.

import { sharedEntry } from './store.js';

const stored = sharedEntry('qc.session.v1', 'qc:session');

export class ApiError extends Error {
  /**
   * @param {{status:number, code:string, message:string, retryAfter?:number|null, detail?:object|null}} detail
   */
  constructor({ status, code, message, retryAfter = null, detail = null }) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    // The whole `error` object of the answer: some errors carry more than code and message
    // (e.g. `checked_in_at` and `checked_in_by` on a ticket that was already checked in).
    this.detail = detail && typeof detail === 'object' ? detail : {};
  }
}

// ---- session -------------------------------------------------------------------------------------------

/** The stored session `{token, user, expiresAt}`, or null when absent, malformed or expired. */
export function getSession() {
  const s = stored.read();
  if (!s || typeof s.token !== 'string' || !s.user || typeof s.user !== 'object') return null;
  if (typeof s.expiresAt === 'number' && Date.now() >= s.expiresAt) {
    clearSession();
    return null;
  }
  return s;
}

export function currentUser() {
  return getSession()?.user ?? null;
}

/** Stores the answer of register or login. */
export function saveSession(answer) {
  const ttl = Number(answer.expires_in) || 0;
  const session = {
    token: answer.access_token,
    user: answer.user,
    // A minute of slack so the page does not send a token that expires on the way.
    expiresAt: ttl > 0 ? Date.now() + Math.max(ttl - 60, 1) * 1000 : null,
  };
  stored.write(session);
  return session;
}

/** Keeps the stored user in step with GET /api/me (name or role may have changed). */
export function updateSessionUser(user) {
  const s = getSession();
  if (!s) return;
  s.user = user;
  stored.write(s);
}

export function clearSession() {
  stored.write(null);
}

/** Calls `fn` whenever the session changes, in this tab or another. */
export function onSessionChange(fn) {
  stored.onChange(fn);
}

// ---- requests ------------------------------------------------------------------------------------------

/** Seconds from a Retry-After header (delta-seconds or an HTTP date), or null. */
function parseRetryAfter(value) {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

/**
 * Sends a request to the API. `body` (if any) is sent as JSON. Resolves with the parsed JSON answer (or
 * null for an empty one); rejects with an ApiError carrying status, code, message and retryAfter.
 */
export async function api(path, { method = 'GET', body, auth = true, signal, headers: extra, keepSessionOn401 = false } = {}) {
  const headers = { Accept: 'application/json', ...(extra || {}) };
  const session = auth ? getSession() : null;
  if (session) headers.Authorization = `Bearer ${session.token}`;
  const init = { method, headers, signal, credentials: 'same-origin' };
  // Always revalidate (ETag) so counts and newly published events are current.
  if (method === 'GET') init.cache = 'no-cache';
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }

  let response;
  try {
    response = await fetch(path, init);
  } catch (cause) {
    if (cause?.name === 'AbortError') throw cause;
    throw new ApiError({ status: 0, code: 'network', message: 'Could not reach the server. Check your connection and try again.' });
  }

  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (response.ok) return data;

  const detail = data && data.error && typeof data.error === 'object' ? data.error : {};
  const error = new ApiError({
    status: response.status,
    code: typeof detail.code === 'string' ? detail.code : `http_${response.status}`,
    message: typeof detail.message === 'string' && detail.message ? detail.message : `The server answered ${response.status} ${response.statusText}`.trim(),
    retryAfter: parseRetryAfter(response.headers.get('Retry-After')),
    detail,
  });
  // A token the server no longer accepts (expired, or signed with another key): forget it.
  // (Unless the caller says a 401 may be about something else, e.g. an admission token at checkout.)
  if (response.status === 401 && session && !keepSessionOn401) clearSession();
  throw error;
}

export const get = (path, opts) => api(path, { ...opts, method: 'GET' });
export const post = (path, body, opts) => api(path, { ...opts, method: 'POST', body });
export const put = (path, body, opts) => api(path, { ...opts, method: 'PUT', body });
export const patch = (path, body, opts) => api(path, { ...opts, method: 'PATCH', body });
export const del = (path, opts) => api(path, { ...opts, method: 'DELETE' });

const HINTS = {
  email_taken: 'Sign in with it instead, or use another email address.',
  forbidden: 'Your account does not have the role needed for this.',
};

/** A sentence for the user: the API's own message, plus when to retry if it said so. */
export function describeError(err) {
  if (!err) return 'Something went wrong.';
  if (err instanceof ApiError) {
    let msg = err.message.charAt(0).toUpperCase() + err.message.slice(1);
    if (!/[.!?]$/.test(msg)) msg += '.';
    if (HINTS[err.code]) msg += ` ${HINTS[err.code]}`;
    if (err.status === 429 || (err.status === 503 && err.retryAfter)) {
      const s = err.retryAfter ?? 60;
      msg += ` Please try again in ${s} second${s === 1 ? '' : 's'}.`;
    }
    return msg;
  }
  return err.message || String(err);
}

/**
 * Where to go after signing in: a same-origin relative path only (never another site, a scheme such as
 * javascript:, or a protocol-relative "//host"). Anything else gives `fallback`.
 */
export function safeNext(raw, fallback = 'index.html') {
  if (typeof raw !== 'string') return fallback;
  const value = raw.trim();
  if (!value || value.length > 512) return fallback;
  // Control characters and backslashes are how "relative-looking" URLs sneak off-site.
  if (/[\u0000-\u001f\u007f\\]/.test(value)) return fallback;
  if (/^[a-z][a-z0-9+.-]*:/i.test(value)) return fallback; // any scheme: http:, javascript:, data:
  if (value.startsWith('//')) return fallback;
  let url;
  try {
    url = new URL(value, window.location.href);
  } catch {
    return fallback;
  }
  if (url.origin !== window.location.origin) return fallback;
  if (/\/login\.html$/.test(url.pathname)) return fallback; // no loop back to the sign-in page
  return url.pathname + url.search + url.hash;
}
