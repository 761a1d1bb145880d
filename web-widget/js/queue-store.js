// What this tab remembers about an event's waiting room, in sessionStorage (per tab, gone when the tab
// closes): the visitor credential, so a reload rejoins with the same place, and the admission token once
// the visitor's turn has come, with its expiry.

import { session } from './store.js';

const VISITOR_PREFIX = 'qc.queue.v1.';
const ADMISSION_PREFIX = 'qc.admission.v1.';
const ADMISSION_EVENT = 'qc:admission';

// Storage full or disabled: the page still works, a reload just gives a new place.
const { read, write } = session;

/** The stored visitor credential for `eventId`, or null. */
export function visitorToken(eventId) {
  const v = read(VISITOR_PREFIX + eventId);
  return v && typeof v.visitor_token === 'string' && v.visitor_token ? v.visitor_token : null;
}

export function saveVisitorToken(eventId, token) {
  if (typeof token === 'string' && token) write(VISITOR_PREFIX + eventId, { visitor_token: token, saved_at: Date.now() });
}

export function forgetVisitor(eventId) {
  write(VISITOR_PREFIX + eventId, null);
}

/**
 * The admission for `eventId` while it is valid: `{admission_token, expires_at, admitted_at}`, or null
 * (none, malformed, or expired — an expired one is removed).
 */
export function admission(eventId) {
  const a = read(ADMISSION_PREFIX + eventId);
  if (!a || typeof a.admission_token !== 'string' || !a.admission_token) return null;
  const expires = Date.parse(a.expires_at);
  if (Number.isNaN(expires) || expires <= Date.now()) {
    write(ADMISSION_PREFIX + eventId, null);
    return null;
  }
  return a;
}

export function saveAdmission(eventId, message) {
  write(ADMISSION_PREFIX + eventId, {
    admission_token: message.admission_token,
    expires_at: message.expires_at,
    admitted_at: message.admitted_at ?? null,
  });
  window.dispatchEvent(new CustomEvent(ADMISSION_EVENT, { detail: { eventId } }));
}

export function forgetAdmission(eventId) {
  write(ADMISSION_PREFIX + eventId, null);
  window.dispatchEvent(new CustomEvent(ADMISSION_EVENT, { detail: { eventId } }));
}

/** Calls `fn(eventId)` when an admission is stored or removed in this tab. */
export function onAdmissionChange(fn) {
  window.addEventListener(ADMISSION_EVENT, (e) => fn(e.detail?.eventId));
}
