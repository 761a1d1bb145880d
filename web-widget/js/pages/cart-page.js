// Cart: lines, quantities, totals, and "Continue to checkout", which makes sure the buyer is signed in and
// has been admitted by the event's waiting room (otherwise it sends them to the queue). Submitting the
// order comes in the next release.

import { describeError, get, getSession, onSessionChange, updateSessionUser } from '../api.js';
import { loadCart, onCartChange, reconcile, removeLine, setQuantity, totals } from '../cart.js';
import { onAction, STAY_DISABLED } from '../forms.js';
import { renderChrome } from '../layout.js';
import { admission, onAdmissionChange } from '../queue-store.js';
import { stepper } from '../stepper.js';
import { el, fill, isUuid, rupiah, say, timeWIB } from '../util.js';

renderChrome({ active: 'cart' });

const root = document.getElementById('cart');
const eventLine = document.getElementById('cart-event');
const notesBox = document.getElementById('cart-notes');

let eventState = 'unknown'; // 'unknown' | 'ok' | 'gone'
let quietSave = false; // true while this page itself saves a quantity (no full re-render then)

function signedInText(user, admitted) {
  return admitted
    ? `Signed in as ${user.name} — you have been admitted until ${timeWIB(admitted.expires_at)} WIB.`
    : `Signed in as ${user.name} — checkout opens when the sale's waiting room admits you.`;
}

const ADMITTED_TEXT = 'Admitted — checkout opens in the next release.';

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

  const checkout = el('button', { type: 'button', id: 'checkout', class: 'btn btn-block', text: 'Continue to checkout', disabled: eventState === 'gone' });
  const checkoutMsg = el('p', { class: 'form-msg', id: 'checkout-msg', attrs: { role: 'status' }, hidden: true });
  const user = getSession()?.user;
  if (eventState === 'gone') say(checkoutMsg, 'This event is no longer on sale, so this cart cannot be checked out.', 'error');
  else if (user) say(checkoutMsg, signedInText(user, admission(cart.event_id)), 'ok');

  onAction(checkout, async () => {
    if (!getSession()) {
      window.location.assign('login.html?next=cart.html');
      return STAY_DISABLED;
    }
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
      say(checkoutMsg, ADMITTED_TEXT, 'ok');
      checkoutMsg.focus();
      return undefined;
    } catch (err) {
      if (err.status === 401) {
        window.location.assign('login.html?next=cart.html');
        return STAY_DISABLED;
      }
      throw err;
    }
  }, { status: checkoutMsg });
  checkoutMsg.tabIndex = -1;

  fill(root,
    el('div', { class: 'layout-2' },
      el('section', { class: 'card', attrs: { 'aria-label': 'Items in your cart' } },
        el('div', { class: 'table-wrap' },
          el('table', { id: 'cart-table' },
            el('thead', {}, el('tr', {},
              el('th', { scope: 'col', text: 'Item' }),
              el('th', { scope: 'col', class: 'num', text: 'Price' }),
              el('th', { scope: 'col', text: 'Quantity' }),
              el('th', { scope: 'col', class: 'num', text: 'Total' }),
              el('th', { scope: 'col' }, el('span', { class: 'sr-only', text: 'Actions' })))),
            el('tbody', {}, rows))),
        el('p', { class: 'muted small', text: 'Prices are shown as last seen; the final price is confirmed at checkout.' })),
      el('aside', { class: 'card summary sticky', attrs: { 'aria-labelledby': 'summary-title' } },
        el('h2', { id: 'summary-title', text: 'Summary' }),
        el('ul', { class: 'summary-lines' },
          el('li', {}, el('span', { text: 'Items' }), unitsCell)),
        el('div', { class: 'summary-total' }, el('span', { text: 'Total' }), totalCell),
        el('div', { class: 'form' }, checkout, checkoutMsg))));
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
