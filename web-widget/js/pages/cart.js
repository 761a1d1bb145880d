// Cart: lines, quantities, totals, and checkout. "Continue to checkout" makes sure the buyer is signed in
// and has been admitted by the event's waiting room (otherwise it sends them to the queue); once admitted
// the button reads "Place order" and submits the cart (POST /api/orders with one Idempotency-Key per cart
// contents, kept in sessionStorage), then follows the request until it is confirmed or rejected.

import { ApiError, api, describeError, get, getSession, onSessionChange, updateSessionUser } from '../api.js';
import { clearCart, loadCart, onCartChange, reconcile, removeLine, setQuantity, totals } from '../cart.js';
import { onAction, STAY_DISABLED } from '../forms.js';
import { renderChrome } from '../layout.js';
import { attemptFor, currentAttempt, forgetAttempt, orderBody, reasonText, rememberRequest } from '../orders.js';
import { admission, forgetAdmission, forgetVisitor, onAdmissionChange, visitorToken } from '../queue-store.js';
import { stepper } from '../stepper.js';
import { dataTable, el, fill, isUuid, rupiah, say, timeWIB } from '../util.js';

renderChrome({ active: 'cart' });

const root = document.getElementById('cart');
const eventLine = document.getElementById('cart-event');
const notesBox = document.getElementById('cart-notes');

let eventState = 'unknown'; // 'unknown' | 'ok' | 'gone'
let quietSave = false; // true while this page itself saves a quantity (no full re-render then)
let inFlight = false; // an order is being submitted or confirmed: no second submit, no re-enabling

function signedInText(user, admitted) {
  return admitted
    ? `Signed in as ${user.name} — you have been admitted until ${timeWIB(admitted.expires_at)} WIB.`
    : `Signed in as ${user.name} — checkout opens when the sale's waiting room admits you.`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The button and the order's progress live across re-renders (a re-render must never give a second,
// enabled button while an order is in flight).
const checkout = el('button', { type: 'button', id: 'checkout', class: 'btn btn-block', text: 'Continue to checkout' });
const checkoutMsg = el('p', { class: 'form-msg', id: 'checkout-msg', attrs: { role: 'status' }, hidden: true });
checkoutMsg.tabIndex = -1;
const orderMsg = el('div', { class: 'form-msg', id: 'order-msg', attrs: { role: 'status', 'aria-live': 'polite' }, hidden: true });
orderMsg.tabIndex = -1;

function showOrder(kind, ...content) {
  fill(orderMsg, ...content);
  orderMsg.classList.toggle('is-error', kind === 'error');
  orderMsg.classList.toggle('is-ok', kind === 'ok');
  orderMsg.hidden = content.length === 0;
}

function queueLink(eventId, text = 'Join the queue again') {
  return isUuid(eventId)
    ? el('a', { class: 'btn btn-small btn-secondary', href: `queue.html?event=${encodeURIComponent(eventId)}`, text })
    : null;
}

/** The admission can no longer buy: forget it (and the visitor, so the queue gives a fresh place). */
function admissionGone(eventId, text) {
  forgetAttempt();
  forgetAdmission(eventId);
  forgetVisitor(eventId);
  showOrder('error', el('p', { text }), queueLink(eventId));
}

function confirmed(orderId, eventId) {
  forgetAttempt();
  forgetAdmission(eventId);
  showOrder('ok', el('p', { text: 'Order confirmed! Opening your order…' }));
  clearCart();
  window.location.assign(`order.html?id=${encodeURIComponent(orderId)}`);
}

function rejected(reason) {
  forgetAttempt();
  showOrder('error', el('p', { text: reasonText(reason) }));
}

/** Follows a queued order request every 500 ms until it is decided. Resolves true when it navigated away. */
async function follow(requestId, eventId) {
  showOrder('', el('p', { text: 'Order received, confirming…' }));
  const deadline = Date.now() + 120_000;
  let failures = 0;
  while (Date.now() < deadline) {
    await sleep(500);
    let answer;
    try {
      answer = await get(`/api/orders/requests/${encodeURIComponent(requestId)}`);
      failures = 0;
    } catch (err) {
      if (err.status === 401) {
        showOrder('error', el('p', { text: 'Your session has expired. Sign in again to see your order.' }),
          el('a', { class: 'btn btn-small btn-secondary', href: 'login.html?next=cart.html', text: 'Sign in' }));
        return false;
      }
      if (err.status === 404) {
        forgetAttempt();
        showOrder('error', el('p', { text: 'This order request is unknown to the server. Please place the order again.' }));
        return false;
      }
      failures += 1;
      if (failures >= 10) break;
      continue;
    }
    if (answer.status === 'confirmed' && answer.order_id) {
      confirmed(answer.order_id, eventId);
      return true;
    }
    if (answer.status === 'rejected') {
      rejected(answer.reason);
      return false;
    }
  }
  showOrder('', el('p', { text: 'Your order is taking longer than usual to confirm. Check ' },
    el('a', { href: 'orders.html', text: 'My orders' }), ' in a moment, or place the order again (it will not be placed twice).'));
  return false;
}

function decide(answer, eventId) {
  if (answer.status === 'confirmed' && answer.order_id) {
    confirmed(answer.order_id, eventId);
    return Promise.resolve(true);
  }
  if (answer.status === 'rejected') {
    rejected(answer.reason);
    return Promise.resolve(false);
  }
  return follow(answer.request_id, eventId);
}

/** Submits the cart. Resolves true when the page navigates to the order. */
async function placeOrder() {
  const cart = loadCart();
  const eventId = cart.event_id;
  const admitted = admission(eventId);
  const visitor = visitorToken(eventId);
  if (!admitted || !visitor) {
    admissionGone(eventId, 'Your turn in the waiting room is no longer held in this tab. Join the queue again to check out.');
    return false;
  }
  const attempt = attemptFor(cart);
  const body = orderBody(cart);
  showOrder('', el('p', { text: 'Placing your order…' }));
  for (let round = 0; ; round++) {
    let answer;
    try {
      answer = await api('/api/orders', {
        method: 'POST',
        body,
        keepSessionOn401: true,
        headers: { 'Idempotency-Key': attempt.key, 'Admission-Token': admitted.admission_token, 'Visitor-Token': visitor },
      });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if ((err.status === 503 || err.status === 429) && round === 0) {
        const secs = Math.max(1, err.retryAfter ?? 2);
        showOrder('', el('p', { text: `Checkout is busy right now. Trying again in ${secs} second${secs === 1 ? '' : 's'}…` }));
        await sleep(secs * 1000);
        continue;
      }
      if (err.status === 503 || err.status === 429 || err.status === 0) {
        // The same key is kept: pressing "Place order" again cannot order twice.
        showOrder('error', el('p', { text: `${describeError(err)} Press "Place order" to try again; you will not be charged twice.` }));
        return false;
      }
      if (err.status === 401) {
        // The bearer token or the admission: ask the server which.
        try {
          await get('/api/me');
        } catch (meErr) {
          if (meErr.status === 401) {
            showOrder('error', el('p', { text: 'Your session has expired. Sign in again, then place the order.' }),
              el('a', { class: 'btn btn-small btn-secondary', href: 'login.html?next=cart.html', text: 'Sign in' }));
            return false;
          }
        }
        admissionGone(eventId, 'Your turn in the waiting room has expired or is no longer valid. Join the queue again to check out.');
        return false;
      }
      if (err.status === 403) {
        admissionGone(eventId, 'This turn in the waiting room belongs to someone else. Join the queue yourself to check out.');
        return false;
      }
      if (err.code === 'admission_used') {
        admissionGone(eventId, 'This turn in the waiting room was already used for an order. Join the queue again to place another one.');
        return false;
      }
      if (err.code === 'sold_out' || err.code === 'not_on_sale') {
        rejected(err.code);
        return false;
      }
      forgetAttempt();
      showOrder('error', el('p', { text: describeError(err) }));
      return false;
    }
    rememberRequest(attempt, answer.request_id);
    return decide(answer, eventId);
  }
}

onAction(checkout, async () => {
  if (!getSession()) {
    window.location.assign('login.html?next=cart.html');
    return STAY_DISABLED;
  }
  inFlight = true;
  try {
    // Make sure the stored token still works (it may have expired or the server may have rotated keys).
    const me = await get('/api/me');
    updateSessionUser(me);
    const eventId = loadCart().event_id;
    if (!admission(eventId)) {
      // No (valid) admission for this event in this tab: its waiting room decides when it is their turn.
      if (isUuid(eventId)) {
        window.location.assign(`queue.html?event=${encodeURIComponent(eventId)}`);
        return STAY_DISABLED;
      }
      say(checkoutMsg, signedInText(me), 'ok');
      checkoutMsg.focus();
      return undefined;
    }
    say(checkoutMsg, '');
    const left = await placeOrder();
    if (left) return STAY_DISABLED;
    orderMsg.focus();
    return undefined;
  } catch (err) {
    if (err.status === 401) {
      window.location.assign('login.html?next=cart.html');
      return STAY_DISABLED;
    }
    throw err;
  } finally {
    inFlight = false;
  }
}, { status: checkoutMsg });

function render() {
  const cart = loadCart();
  if (cart.items.length === 0) {
    eventLine.textContent = '';
    fill(root, el('div', { class: 'card empty' },
      el('h2', { text: 'Your cart is empty' }),
      el('p', { class: 'muted', text: 'Pick tickets and merchandise on an event page; they wait here until checkout.' }),
      el('a', { class: 'btn', href: 'index.html', text: 'Browse events' })));
    return;
  }

  fill(eventLine, 'For ', isUuid(cart.event_id)
    ? el('a', { href: `event.html?id=${encodeURIComponent(cart.event_id)}`, text: cart.event_name || 'this event' })
    : cart.event_name);

  const totalCell = el('span', { id: 'cart-total', text: '' });
  const unitsCell = el('span', { id: 'cart-units', text: '' });
  const lineTotals = new Map();
  const refreshTotals = () => {
    const c = loadCart();
    const t = totals(c);
    totalCell.textContent = rupiah(t.total);
    unitsCell.textContent = `${t.units}`;
    for (const line of c.items) {
      const cell = lineTotals.get(`${line.kind}:${line.id}`);
      if (cell) cell.textContent = rupiah(line.qty * line.price);
    }
  };

  const rows = cart.items.map((line) => {
    const key = `${line.kind}:${line.id}`;
    const lineTotal = el('td', { class: 'num line-total', text: rupiah(line.qty * line.price), attrs: { 'data-label': 'Total' } });
    lineTotals.set(key, lineTotal);
    const pick = stepper({
      inputId: `cart-qty-${line.kind}-${line.id}`,
      name: line.name,
      min: 1,
      max: Math.max(1, line.limit),
      value: line.qty,
      onChange: (qty) => {
        quietSave = true;
        const kept = setQuantity(line.kind, line.id, qty);
        quietSave = false;
        refreshTotals();
        return kept;
      },
    });
    return el('tr', { data: { kind: line.kind, productId: line.id, name: line.name } },
      el('td', {},
        el('span', { class: `kind${line.kind === 'merch' ? ' kind-merch' : ''}`, text: line.kind === 'ticket' ? 'Ticket' : 'Merchandise' }),
        el('div', { class: 'line-name' }, el('strong', { text: line.name }))),
      el('td', { class: 'num', text: rupiah(line.price), attrs: { 'data-label': 'Price' } }),
      el('td', {}, pick.node),
      lineTotal,
      el('td', { class: 'num' },
        el('button', {
          type: 'button',
          class: 'btn btn-ghost btn-small',
          text: 'Remove',
          attrs: { 'aria-label': `Remove ${line.name}` },
          onClick: () => removeLine(line.kind, line.id),
        })));
  });

  const user = getSession()?.user;
  const admitted = user ? admission(cart.event_id) : null;
  checkoutMsg.hidden = true;
  if (eventState === 'gone') say(checkoutMsg, 'This event is no longer on sale, so this cart cannot be checked out.', 'error');
  else if (user) say(checkoutMsg, signedInText(user, admitted), 'ok');
  checkout.textContent = admitted ? 'Place order' : 'Continue to checkout';
  if (!inFlight) checkout.disabled = eventState === 'gone';

  fill(root,
    el('div', { class: 'layout-2' },
      el('section', { class: 'card', attrs: { 'aria-label': 'Items in your cart' } },
        dataTable('cart-table', ['Item', { label: 'Price', num: true }, 'Quantity', { label: 'Total', num: true }, { label: 'Actions', hidden: true }], rows),
        el('p', { class: 'muted small', text: 'Prices are shown as last seen; the final price is confirmed at checkout.' })),
      el('aside', { class: 'card summary sticky', attrs: { 'aria-labelledby': 'summary-title' } },
        el('h2', { id: 'summary-title', text: 'Summary' }),
        el('ul', { class: 'summary-lines' },
          el('li', {}, el('span', { text: 'Items' }), unitsCell)),
        el('div', { class: 'summary-total' }, el('span', { text: 'Total' }), totalCell),
        el('div', { class: 'form' }, checkout, checkoutMsg, orderMsg))));
  refreshTotals();
}

/** Refreshes prices and limits from the API; drops what is no longer on sale and says so. */
async function refreshFromServer() {
  const cart = loadCart();
  if (!cart.event_id || !isUuid(cart.event_id)) return;
  try {
    const event = await get(`/api/events/${encodeURIComponent(cart.event_id)}`, { auth: false });
    eventState = 'ok';
    const notes = reconcile(event);
    if (notes.length) {
      fill(notesBox, el('p', { text: `Your cart was updated: ${notes.join(' ')}` }));
      notesBox.hidden = false;
    }
  } catch (err) {
    if (err.status === 404) {
      eventState = 'gone';
    } else {
      fill(notesBox, el('p', { text: `Could not check current prices. ${describeError(err)}` }));
      notesBox.hidden = false;
    }
  }
  render();
}

render();
refreshFromServer();
resumeAfterReload();

/** After a reload while an order was being confirmed: keep following the same request. */
async function resumeAfterReload() {
  const cart = loadCart();
  const attempt = cart.items.length ? currentAttempt(cart) : null;
  if (!attempt || !attempt.request_id || !getSession()) return;
  inFlight = true;
  checkout.disabled = true;
  let left = false;
  try {
    left = await follow(attempt.request_id, cart.event_id);
  } finally {
    inFlight = false;
    if (!left) checkout.disabled = eventState === 'gone';
  }
}
onCartChange(() => {
  if (!quietSave) render();
});
onAdmissionChange(() => render());
// Re-render only when who is signed in changes (not when the same user's details are refreshed).
const who = () => {
  const u = getSession()?.user;
  return u ? `${u.id}|${u.name}` : '';
};
let lastWho = who();
onSessionChange(() => {
  if (who() !== lastWho) {
    lastWho = who();
    render();
  }
});
