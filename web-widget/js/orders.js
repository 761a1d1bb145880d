// Orders: the checkout attempt kept per tab (so a retry or reload resubmits with the same
// Idempotency-Key), the payment key kept per order, and the words shown for order and payment statuses
// and rejection reasons.

import { local, session } from './store.js';

const ATTEMPT_KEY = 'qc.checkout.v1';

/** The cart's contents as the server sees them: one string per distinct cart. */
export function cartFingerprint(cart) {
  const items = cart.items
    .map((i) => `${i.kind}:${i.id}:${i.qty}`)
    .sort();
  return `${cart.event_id}|${items.join(',')}`;
}

function readAttempt() {
  const a = session.read(ATTEMPT_KEY);
  return a && typeof a.key === 'string' && typeof a.fingerprint === 'string' ? a : null;
}

function writeAttempt(a) {
  session.write(ATTEMPT_KEY, a || null); // storage disabled: a reload then starts a new attempt
}

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

/** The stored attempt for exactly this cart, or null. */
export function currentAttempt(cart) {
  const a = readAttempt();
  return a && a.fingerprint === cartFingerprint(cart) ? a : null;
}

/** The attempt for this cart: the stored one (same key) or a new one when the cart changed. */
export function attemptFor(cart) {
  const kept = currentAttempt(cart);
  if (kept) return kept;
  const a = { key: newKey(), fingerprint: cartFingerprint(cart), request_id: null };
  writeAttempt(a);
  return a;
}

export function rememberRequest(attempt, requestId) {
  attempt.request_id = requestId;
  writeAttempt(attempt);
}

/** After a decision (or a final refusal) the next purchase is a new attempt with a new key. */
export function forgetAttempt() {
  writeAttempt(null);
}

/** The API body for a cart. */
export function orderBody(cart) {
  return {
    event_id: cart.event_id,
    items: cart.items.map((i) => (i.kind === 'ticket'
      ? { ticket_category_id: i.id, quantity: i.qty }
      : { merchandise_id: i.id, quantity: i.qty })),
  };
}

const REASONS = {
  sold_out: 'Sold out while you were checking out. Something in your cart has just run out.',
  per_order_limit: 'That is more than one order may hold. Lower the quantities and try again.',
  per_buyer_limit: 'You have reached the limit of tickets per buyer for this event (counting your earlier orders).',
  not_on_sale: 'This event is not on sale right now.',
  unknown_item: 'Something in your cart is no longer sold. Remove it and try again.',
  internal_error: 'We could not process your order because of a problem on our side. Please try again.',
};

/** Plain words for a rejection reason (or a 409 code with the same meaning). */
export function reasonText(reason) {
  return REASONS[reason] || 'Your order could not be placed. Please try again.';
}

const STATUS = {
  pending_payment: 'Pending payment',
  payment_review: 'Payment under review',
  paid: 'Paid',
  expired: 'Expired',
  cancelled: 'Cancelled',
  refunded: 'Refunded',
  partially_refunded: 'Partly refunded',
};

export function statusText(status) {
  return STATUS[status] || String(status || '').replace(/_/g, ' ');
}

/** The pill colour of an order status: amber while something is still open, red when it is over. */
export function statusPillClass(status) {
  if (status === 'cancelled' || status === 'expired' || status === 'refunded') return 'pill pill-out';
  if (status === 'pending_payment' || status === 'payment_review') return 'pill pill-warn';
  return 'pill';
}

/** Orders whose e-tickets exist (GET /api/orders/{id}/tickets answers for these). */
export function hasTickets(status) {
  return status === 'paid' || status === 'partially_refunded';
}

// ---- payments ----------------------------------------------------------------------------------------
//
// One Idempotency-Key per order and payment method, kept in localStorage (`qc.pay.<orderId>`) so a retry,
// a reload or a second tab asks for the same payment instead of opening another one. A new key is made
// when the buyer picks the other method, or after the last payment ended without being paid.

const PAY_PREFIX = 'qc.pay.';

const PAYMENT_STATUS = {
  pending: 'Waiting for payment',
  paid: 'Paid',
  failed: 'Failed',
  expired: 'Expired',
  cancelled: 'Cancelled',
  refund_pending: 'Refund in progress',
  refunded: 'Refunded',
  partially_refunded: 'Partly refunded',
  challenge: 'Under review',
  reversed: 'Reversed',
};

export function paymentStatusText(status) {
  return PAYMENT_STATUS[status] || String(status || '').replace(/_/g, ' ');
}

export const METHOD_NAMES = { snap: 'Snap', qris: 'QRIS' };

/** A payment that ended without money arriving: the buyer may try again while the hold lasts. */
export function paymentEndedUnpaid(payment) {
  return !!payment && ['failed', 'expired', 'cancelled'].includes(payment.status);
}

function readPayKey(orderId) {
  const k = local.read(PAY_PREFIX + orderId);
  return k && typeof k.key === 'string' && typeof k.method === 'string' ? k : null;
}

/** The Idempotency-Key for paying `orderId` with `method`: the kept one, or a new one (then kept). */
export function paymentKey(orderId, method) {
  const kept = readPayKey(orderId);
  if (kept && kept.method === method) return kept.key;
  const key = newKey();
  // Storage disabled: a retry then uses a new key, and the server still keeps one live payment.
  local.write(PAY_PREFIX + orderId, { key, method });
  return key;
}

/** Forgets the key (the payment ended, or the order no longer needs paying). */
export function forgetPaymentKey(orderId) {
  local.write(PAY_PREFIX + orderId, null);
}
