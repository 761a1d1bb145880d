// One order: items, unit prices, total and status.
//
// While it waits for payment: a live countdown to its expiry, "Cancel order", and the two ways to pay —
// Snap (Midtrans's hosted page: cards, e-wallets, QRIS, virtual accounts) or QRIS shown right here, with
// the order polled every 2 s until the payment lands. A payment already started offers "Continue
// payment" instead. Back from Midtrans (the URL then carries `&transaction_status=…`) the page says it is
// waiting for the confirmation and polls every second, for up to a minute, until the payment is paid or
// has failed. The URL's own words are never trusted for the outcome: only the order the server returns.
// Once paid: the link to the e-tickets.

import { describeError, get, getSession, post } from '../api.js';
import { onAction, onSubmit, STAY_DISABLED } from '../forms.js';
import { renderChrome } from '../layout.js';
import {
  forgetPaymentKey, hasTickets, METHOD_NAMES, paymentEndedUnpaid, paymentKey, paymentStatusText, statusPillClass, statusText,
} from '../orders.js';
import { qrBox } from '../qr.js';
import { clock, dataTable, el, fill, formatWIB, isUuid, param, rupiah, say } from '../util.js';

renderChrome({ active: 'orders' });

const root = document.getElementById('order-root');
const eventLine = document.getElementById('order-event');
const orderId = param('id');

const QRIS_POLL_MS = 2000;
const RETURN_POLL_MS = 1000;
const RETURN_WAIT_MS = 60_000;
const FAILED_RETURNS = ['deny', 'cancel', 'expire', 'failure'];

// Midtrans sends the buyer back with its own order id and its view of the outcome in the query string.
const returnStatus = param('transaction_status');
const backFromMidtrans = returnStatus !== null || param('status_code') !== null;

let order = null;
let countdownTimer = null;
let poll = null; // { kind: 'qris' | 'confirm', timer } — one poller at a time
let showQr = false; // the QRIS code of the live payment is open
let confirming = null; // { until, failed } while waiting for Midtrans's word after a payment
let flash = null; // { text, kind } shown once in the payment panel at the next draw

function goSignIn() {
  window.location.assign(`login.html?next=${encodeURIComponent(`order.html?id=${orderId}`)}`);
}

/** Drops Midtrans's parameters from the address, so a reload does not wait for a confirmation again. */
function cleanUrl() {
  if (!backFromMidtrans) return;
  const clean = `order.html?id=${encodeURIComponent(orderId)}`;
  if (window.location.search !== `?id=${encodeURIComponent(orderId)}`) window.history.replaceState(window.history.state, '', clean);
}

/** Only a web address may be followed to the payment page (never javascript: or the like). */
function paymentPageUrl(raw) {
  if (typeof raw !== 'string' || !raw) return null;
  try {
    const url = new URL(raw, window.location.href);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
  } catch {
    return null;
  }
}

/** The payment has an outcome (or the order moved on): nothing more to wait for. */
function settled(o) {
  if (o.status !== 'pending_payment') return true;
  return !!o.payment && o.payment.status !== 'pending';
}

/** Money arrived (or is being checked) but the order has not caught up yet. */
function paymentAhead(o) {
  return o.status === 'pending_payment' && !!o.payment && o.payment.status !== 'pending' && !paymentEndedUnpaid(o.payment);
}

function signature(o) {
  const p = o && o.payment;
  return o ? [o.status, o.notice || '', p ? `${p.payment_id}:${p.status}` : '-'].join('|') : '';
}

// ---- polling -------------------------------------------------------------------------------------

function stopPolling() {
  if (poll) clearTimeout(poll.timer);
  poll = null;
}

/**
 * Re-reads the order every `everyMs` until `done(order)` says so (then redraws once more). Redraws in
 * between only when something changed, so the page does not flicker every second.
 */
function startPolling(kind, everyMs, done) {
  stopPolling();
  const mine = { kind, timer: null };
  poll = mine;
  const step = async () => {
    if (poll !== mine) return;
    let fresh = null;
    try {
      fresh = await get(`/api/orders/${encodeURIComponent(orderId)}`);
    } catch (err) {
      if (err.status === 401) {
        goSignIn();
        return;
      }
      // A failed read (network, a busy server): the next tick tries again.
    }
    if (poll !== mine) return;
    const changed = fresh && signature(fresh) !== signature(order);
    if (fresh) order = fresh;
    if (done(order)) {
      stopPolling();
      draw();
      return;
    }
    if (changed) draw();
    mine.timer = setTimeout(step, everyMs);
  };
  mine.timer = setTimeout(step, everyMs);
}

function waitForConfirmation() {
  startPolling('confirm', RETURN_POLL_MS, (o) => {
    if (settled(o) && !paymentAhead(o)) {
      confirming = null;
      cleanUrl();
      return true;
    }
    if (Date.now() >= confirming.until) {
      confirming = null;
      cleanUrl();
      flash = {
        kind: 'error',
        text: 'We have not received the confirmation of your payment yet. If you paid, it will show here shortly — reload this page in a minute. If you did not finish paying, you can continue below.',
      };
      return true;
    }
    return false;
  });
}

function watchQris() {
  startPolling('qris', QRIS_POLL_MS, (o) => {
    if (!settled(o)) return false;
    showQr = false;
    if (paymentAhead(o)) {
      confirming = { until: Date.now() + RETURN_WAIT_MS, failed: false };
      setTimeout(waitForConfirmation, 0);
    }
    return true;
  });
}

// ---- paying --------------------------------------------------------------------------------------

/** Plain words for a refused payment request. */
function payError(err) {
  if (err.code === 'hold_ending') {
    return new Error('Less than a minute is left on this order, which is too little to finish a payment safely. When the countdown ends its tickets go back on sale.');
  }
  if (err.status === 502 || err.status === 503) {
    return new Error('The payment provider is not answering right now. Your order is still held — please try again in a moment.');
  }
  if (err.status === 404) return new Error('There is no such order on your account.');
  if (err.code === 'network') return new Error(`${describeError(err)} Your order is still held.`);
  return err;
}

/** POST /api/orders/{id}/payment with the kept Idempotency-Key, then on to Snap or to the QR code. */
async function pay(method, retried = false) {
  const key = paymentKey(order.id, method);
  let payment;
  try {
    payment = await post(`/api/orders/${encodeURIComponent(order.id)}/payment`, { method }, { headers: { 'Idempotency-Key': key } });
  } catch (err) {
    if (err.code === 'not_payable') {
      // The order moved on (expired, cancelled, already paid): show it as it is now.
      forgetPaymentKey(order.id);
      flash = { kind: 'error', text: describeError(err) };
      await load();
      return undefined;
    }
    throw payError(err);
  }
  if (paymentEndedUnpaid(payment) && !retried) {
    // The server answers a key with that key's earlier attempt; this one has ended meanwhile, so a
    // new attempt needs a new key.
    forgetPaymentKey(order.id);
    return pay(method, true);
  }
  order = { ...order, payment };
  if (payment.status !== 'pending') {
    // Paid or under review already (e.g. in another tab): show the order as it is now.
    await load();
    return undefined;
  }
  if (payment.method === 'qris') {
    showQr = true;
    draw();
    watchQris();
    return undefined;
  }
  const url = paymentPageUrl(payment.redirect_url);
  if (!url) throw new Error('The payment page could not be opened. Please try again.');
  window.location.assign(url);
  return STAY_DISABLED;
}

/** A payment already started: back to the same Snap page or the same QR code. */
async function continuePayment() {
  const p = order.payment;
  if (p.method === 'qris') {
    if (!p.qr_svg) return pay('qris'); // the kept key brings back the same live payment
    showQr = true;
    draw();
    watchQris();
    return undefined;
  }
  const url = paymentPageUrl(p.redirect_url);
  if (!url) return pay('snap');
  window.location.assign(url);
  return STAY_DISABLED;
}

// ---- drawing -------------------------------------------------------------------------------------

function flashLine() {
  if (!flash) return null;
  const line = el('p', { id: 'payment-flash', class: 'form-msg', attrs: { role: 'status' } });
  say(line, flash.text, flash.kind);
  flash = null;
  return line;
}

const ENDED_WORDS = {
  failed: 'did not go through',
  expired: 'expired before it was paid',
  cancelled: 'was cancelled',
};

function payPanel(o) {
  const status = el('p', { class: 'form-msg', id: 'pay-msg', attrs: { role: 'status' }, hidden: true });
  const p = o.payment;
  const flashEl = flashLine();

  if (p && p.status === 'pending') {
    const resume = el('button', { type: 'button', id: 'continue-payment', class: 'btn btn-large', text: 'Continue payment' });
    onAction(resume, continuePayment, { status });
    return el('section', { id: 'order-pay', class: 'card pay-card', data: { method: p.method }, attrs: { 'aria-labelledby': 'pay-title' } },
      el('h2', { id: 'pay-title', text: 'Pay' }),
      flashEl,
      el('p', {},
        `You have started paying ${rupiah(p.gross_amount ?? o.total)} with ${METHOD_NAMES[p.method] || p.method}.`,
        p.expires_at ? ` This payment stays open until ${formatWIB(p.expires_at)}.` : ''),
      el('div', { class: 'actions' }, resume),
      status);
  }

  const form = el('form', { id: 'pay-form', class: 'pay-choices', attrs: { 'aria-label': 'Choose how to pay' } },
    el('button', { type: 'submit', id: 'pay-snap', class: 'btn btn-large', name: 'method', value: 'snap', text: 'Pay with Snap (cards, e-wallets, QRIS, VA)' }),
    el('button', { type: 'submit', id: 'pay-qris', class: 'btn btn-secondary btn-large', name: 'method', value: 'qris', text: 'Pay with QRIS' }));
  onSubmit(form, async (_data, _form, submitter) => {
    const method = submitter && submitter.value === 'qris' ? 'qris' : 'snap';
    return pay(method);
  }, { status });

  return el('section', { id: 'order-pay', class: 'card pay-card', attrs: { 'aria-labelledby': 'pay-title' } },
    el('h2', { id: 'pay-title', text: 'Pay' }),
    flashEl,
    paymentEndedUnpaid(p)
      ? el('p', { id: 'payment-ended', class: 'notice notice-error', text: `Your last payment attempt ${ENDED_WORDS[p.status]}. You can try again while the order is held.` })
      : null,
    el('p', { class: 'muted', text: `Choose how to pay ${rupiah(o.total)}. Your tickets stay held until the countdown runs out.` }),
    form,
    el('p', { class: 'muted small', text: 'Snap opens Midtrans\'s secure payment page and brings you back here afterwards. QRIS shows a code on this page that any Indonesian banking or e-wallet app can scan.' }),
    status);
}

function qrisPanel(o) {
  const p = o.payment;
  const amount = rupiah(p.gross_amount ?? o.total);
  return el('section', { id: 'qris-panel', class: 'card pay-card qris-card', attrs: { 'aria-labelledby': 'qris-title' } },
    el('h2', { id: 'qris-title', text: 'Pay with QRIS' }),
    flashLine(),
    qrBox(p.qr_svg, `QRIS code to pay ${amount}`, { id: 'qris-code', className: 'qr-large' }),
    el('p', { class: 'qr-caption' }, el('strong', { text: 'Scan with any QRIS app' }),
      ' — GoPay, OVO, DANA, ShopeePay, LinkAja or your bank\'s mobile app.'),
    el('p', { id: 'qris-amount' }, 'Amount: ', el('strong', { text: amount })),
    p.expires_at ? el('p', { id: 'qris-expiry', class: 'muted', data: { expires: p.expires_at }, text: `This code expires at ${formatWIB(p.expires_at)}.` }) : null,
    el('p', { id: 'qris-waiting', class: 'queue-spinner', attrs: { role: 'status' }, text: 'Waiting for your payment… this page updates by itself.' }));
}

function confirmingPanel() {
  return el('section', { id: 'order-confirming', class: 'card pay-card', attrs: { role: 'status', 'aria-labelledby': 'confirming-title' } },
    el('h2', { id: 'confirming-title', class: 'queue-spinner', text: 'Waiting for payment confirmation…' }),
    el('p', {
      class: 'muted',
      text: confirming.failed
        ? 'Midtrans says the payment did not go through. We are checking with it before you try again.'
        : 'Midtrans has sent you back to us. Its confirmation usually arrives within seconds — please keep this page open.',
    }));
}

function statePanel(o, text, kind = '') {
  return el('section', { id: 'order-outcome', class: `notice${kind ? ` notice-${kind}` : ''}`, attrs: { 'aria-label': 'Order state' } },
    flashLine(),
    el('p', { id: 'order-state', text }),
    o.notice ? el('p', { id: 'order-notice', text: o.notice }) : null);
}

function ticketsPanel(o) {
  const href = `tickets.html?id=${encodeURIComponent(o.id)}`;
  return el('section', { id: 'order-outcome', class: 'notice notice-ok tickets-ready', attrs: { 'aria-label': 'Order state' } },
    flashLine(),
    el('p', { id: 'order-state', class: 'state-big', text: o.status === 'paid' ? 'Paid — see you at the concert!' : 'Paid. Part of this order has been refunded.' }),
    o.notice ? el('p', { id: 'order-notice', text: o.notice }) : null,
    el('p', {}, el('a', { id: 'view-tickets', class: 'btn btn-large btn-teal', href, text: 'View your e-tickets' })),
    el('p', { class: 'small', text: 'Show the QR code of each ticket at the gate; merchandise has its own pickup code.' }));
}

function outcomePanel(o) {
  switch (o.status) {
    case 'pending_payment':
      if (confirming) return confirmingPanel();
      if (showQr && o.payment && o.payment.method === 'qris' && o.payment.status === 'pending') return qrisPanel(o);
      return payPanel(o);
    case 'payment_review':
      return statePanel(o, 'Your payment is under review. The payment provider is checking it; this usually takes a short while. Your tickets stay held until it is decided, and this page will show the outcome.');
    case 'paid':
    case 'partially_refunded':
      return ticketsPanel(o);
    case 'expired':
      return statePanel(o, 'This order expired before it was paid; its tickets went back on sale.', 'error');
    case 'cancelled':
      return statePanel(o, 'This order was cancelled; its tickets went back on sale.', 'error');
    case 'refunded':
      return statePanel(o, 'This order was refunded in full. Its tickets are no longer valid.', 'error');
    default:
      return statePanel(o, `This order is ${statusText(o.status).toLowerCase()}.`);
  }
}

function draw() {
  clearInterval(countdownTimer);
  countdownTimer = null;
  const o = order;
  const pending = o.status === 'pending_payment';
  if (!pending) {
    showQr = false;
    if (poll && poll.kind === 'qris') stopPolling();
    forgetPaymentKey(o.id);
  } else if (paymentEndedUnpaid(o.payment)) {
    forgetPaymentKey(o.id); // the next attempt is a new payment with a new key
  }

  const rows = o.items.map((i) => el('tr', { data: { name: i.name } },
    el('td', {},
      el('span', { class: `kind${i.merchandise_id ? ' kind-merch' : ''}`, text: i.merchandise_id ? 'Merchandise' : 'Ticket' }),
      el('div', { class: 'line-name' }, el('strong', { text: i.name }))),
    el('td', { class: 'num', text: String(i.quantity), attrs: { 'data-label': 'Quantity' } }),
    el('td', { class: 'num', text: rupiah(i.unit_price), attrs: { 'data-label': 'Price' } }),
    el('td', { class: 'num line-total', text: rupiah(i.unit_price * i.quantity), attrs: { 'data-label': 'Total' } })));

  const countdown = el('p', { id: 'order-countdown', class: 'notice', attrs: { role: 'timer', 'aria-live': 'off' }, hidden: true });
  const actionMsg = el('p', { class: 'form-msg', id: 'order-action-msg', attrs: { role: 'status' }, hidden: true });
  const panel = outcomePanel(o);
  let cancel = null;
  if (pending) {
    cancel = el('button', { type: 'button', id: 'cancel-order', class: 'btn btn-danger btn-block', text: 'Cancel order' });
    onAction(cancel, async () => {
      if (!window.confirm('Cancel this order? Its tickets go back on sale and cannot be held for you again.')) return undefined;
      try {
        order = await post(`/api/orders/${encodeURIComponent(o.id)}/cancel`);
      } catch (err) {
        if (err.code === 'not_cancellable') {
          await load();
          return undefined;
        }
        throw err;
      }
      draw();
      return undefined;
    }, { status: actionMsg });
    const expires = Date.parse(o.expires_at);
    const qrExpiry = panel.querySelector('#qris-expiry');
    const qrExpires = qrExpiry ? Date.parse(qrExpiry.dataset.expires) : NaN;
    const tick = () => {
      const now = Date.now();
      if (qrExpiry && !Number.isNaN(qrExpires)) {
        qrExpiry.textContent = qrExpires > now
          ? `This code expires at ${formatWIB(qrExpiry.dataset.expires)} (in ${clock(qrExpires - now)}).`
          : 'This code has expired.';
      }
      const left = expires - now;
      if (left <= 0) {
        clearInterval(countdownTimer);
        countdown.textContent = 'The time to pay has run out.';
        if (cancel) cancel.disabled = true;
        setTimeout(load, 1500);
        return;
      }
      countdown.textContent = `Pay within ${clock(left)} to keep these tickets.`;
    };
    countdown.hidden = false;
    tick();
    countdownTimer = setInterval(tick, 1000);
  }

  const p = o.payment;
  fill(root,
    el('div', { class: 'layout-2' },
      el('div', { class: 'order-main' },
        panel,
        el('section', { class: 'card', attrs: { 'aria-label': 'Items in this order' } },
          dataTable('order-table', ['Item', { label: 'Quantity', num: true }, { label: 'Price', num: true }, { label: 'Total', num: true }], rows),
          el('p', { class: 'muted small', text: `Ordered ${formatWIB(o.created_at)}. Order ${o.id}.` }))),
      el('aside', { class: 'card summary sticky', attrs: { 'aria-labelledby': 'order-summary-title' } },
        el('h2', { id: 'order-summary-title', text: 'Summary' }),
        el('ul', { class: 'summary-lines' },
          el('li', {}, el('span', { text: 'Status' }), el('span', { id: 'order-status', class: statusPillClass(o.status), data: { status: o.status }, text: statusText(o.status) })),
          p ? el('li', {}, el('span', { text: 'Payment' }),
            el('span', { id: 'payment-status', data: { status: p.status, method: p.method }, text: `${METHOD_NAMES[p.method] || p.method} · ${paymentStatusText(p.status)}` })) : null),
        el('div', { class: 'summary-total' }, el('span', { text: 'Total' }), el('span', { id: 'order-total', text: rupiah(o.total) })),
        pending ? countdown : null,
        hasTickets(o.status) ? el('p', {}, el('a', { class: 'btn btn-secondary btn-block', href: `tickets.html?id=${encodeURIComponent(o.id)}`, text: 'E-tickets' })) : null,
        el('div', { class: 'form' }, cancel, actionMsg),
        el('p', {}, el('a', { href: 'orders.html', text: 'All my orders' })))));
}

async function load() {
  let fresh;
  try {
    fresh = await get(`/api/orders/${encodeURIComponent(orderId)}`);
  } catch (err) {
    stopPolling();
    if (err.status === 401) {
      goSignIn();
      return;
    }
    const msg = el('p', { class: 'form-msg' });
    say(msg, err.status === 404 ? 'There is no such order on your account.' : describeError(err), 'error');
    fill(root, el('div', { class: 'card' }, msg, el('a', { class: 'btn btn-secondary', href: 'orders.html', text: 'My orders' })));
    return;
  }
  order = fresh;
  if (confirming && settled(order) && !paymentAhead(order)) {
    confirming = null;
    stopPolling();
  } else if (!confirming && paymentAhead(order)) {
    confirming = { until: Date.now() + RETURN_WAIT_MS, failed: false };
  }
  if (!confirming) cleanUrl();
  draw();
  if (confirming && !(poll && poll.kind === 'confirm')) waitForConfirmation();
  else if (showQr && !(poll && poll.kind === 'qris') && order.status === 'pending_payment') watchQris();
  if (!eventLine.textContent && isUuid(order.event_id)) {
    get(`/api/events/${encodeURIComponent(order.event_id)}`, { auth: false })
      .then((ev) => fill(eventLine, 'For ', el('a', { href: `event.html?id=${encodeURIComponent(ev.id)}`, text: ev.name }), ` — ${formatWIB(ev.starts_at)}`))
      .catch(() => {});
  }
}

if (!isUuid(orderId)) {
  fill(root, el('div', { class: 'card' }, el('p', { text: 'This link does not name an order.' }),
    el('a', { class: 'btn btn-secondary', href: 'orders.html', text: 'My orders' })));
} else if (!getSession()) {
  goSignIn();
} else {
  if (backFromMidtrans) confirming = { until: Date.now() + RETURN_WAIT_MS, failed: FAILED_RETURNS.includes(returnStatus) };
  load();
}
