// One order: items, unit prices, total, status; for an order waiting for payment a live countdown to
// its expiry and a "Cancel order" button.

import { describeError, get, getSession, post } from '../api.js';
import { onAction } from '../forms.js';
import { renderChrome } from '../layout.js';
import { statusText } from '../orders.js';
import { clock, el, fill, formatWIB, isUuid, param, rupiah, say } from '../util.js';

renderChrome({ active: 'orders' });

const root = document.getElementById('order-root');
const eventLine = document.getElementById('order-event');
const orderId = param('id');
let timer = null;
let order = null;

function pillClass(status) {
  if (status === 'cancelled' || status === 'expired') return 'pill pill-out';
  if (status === 'pending_payment') return 'pill pill-warn';
  return 'pill';
}

function stateText(o) {
  switch (o.status) {
    case 'pending_payment': return null; // the countdown says it
    case 'expired': return 'This order expired before it was paid; its tickets went back on sale.';
    case 'cancelled': return 'This order was cancelled; its tickets went back on sale.';
    case 'paid': return 'Paid — see you at the concert!';
    default: return null;
  }
}

function draw() {
  clearInterval(timer);
  timer = null;
  const o = order;
  const rows = o.items.map((i) => el('tr', { data: { name: i.name } },
    el('td', {},
      el('span', { class: `kind${i.merchandise_id ? ' kind-merch' : ''}`, text: i.merchandise_id ? 'Merchandise' : 'Ticket' }),
      el('div', { class: 'line-name' }, el('strong', { text: i.name }))),
    el('td', { class: 'num', text: String(i.quantity), attrs: { 'data-label': 'Quantity' } }),
    el('td', { class: 'num', text: rupiah(i.unit_price), attrs: { 'data-label': 'Price' } }),
    el('td', { class: 'num line-total', text: rupiah(i.unit_price * i.quantity), attrs: { 'data-label': 'Total' } })));

  const countdown = el('p', { id: 'order-countdown', class: 'notice', attrs: { role: 'timer', 'aria-live': 'off' }, hidden: true });
  const actionMsg = el('p', { class: 'form-msg', id: 'order-action-msg', attrs: { role: 'status' }, hidden: true });
  let cancel = null;
  if (o.status === 'pending_payment') {
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
    const tick = () => {
      const left = expires - Date.now();
      if (left <= 0) {
        clearInterval(timer);
        countdown.textContent = 'The time to pay has run out.';
        if (cancel) cancel.disabled = true;
        setTimeout(load, 1500);
        return;
      }
      countdown.textContent = `Pay within ${clock(left)} — payment opens in the next release.`;
    };
    countdown.hidden = false;
    tick();
    timer = setInterval(tick, 1000);
  }
  const state = stateText(o);

  fill(root,
    el('div', { class: 'layout-2' },
      el('section', { class: 'card', attrs: { 'aria-label': 'Items in this order' } },
        el('div', { class: 'table-wrap' },
          el('table', { id: 'order-table' },
            el('thead', {}, el('tr', {},
              el('th', { scope: 'col', text: 'Item' }),
              el('th', { scope: 'col', class: 'num', text: 'Quantity' }),
              el('th', { scope: 'col', class: 'num', text: 'Price' }),
              el('th', { scope: 'col', class: 'num', text: 'Total' }))),
            el('tbody', {}, rows))),
        el('p', { class: 'muted small', text: `Ordered ${formatWIB(o.created_at)}. Order ${o.id}.` })),
      el('aside', { class: 'card summary sticky', attrs: { 'aria-labelledby': 'order-summary-title' } },
        el('h2', { id: 'order-summary-title', text: 'Summary' }),
        el('ul', { class: 'summary-lines' },
          el('li', {}, el('span', { text: 'Status' }), el('span', { id: 'order-status', class: pillClass(o.status), data: { status: o.status }, text: statusText(o.status) }))),
        el('div', { class: 'summary-total' }, el('span', { text: 'Total' }), el('span', { id: 'order-total', text: rupiah(o.total) })),
        o.status === 'pending_payment' ? countdown : null,
        state ? el('p', { id: 'order-state', class: 'notice', text: state }) : null,
        el('div', { class: 'form' }, cancel, actionMsg),
        el('p', {}, el('a', { href: 'orders.html', text: 'All my orders' })))));
}

async function load() {
  try {
    order = await get(`/api/orders/${encodeURIComponent(orderId)}`);
  } catch (err) {
    if (err.status === 401) {
      window.location.assign(`login.html?next=${encodeURIComponent(`order.html?id=${orderId}`)}`);
      return;
    }
    const msg = el('p', { class: 'form-msg' });
    say(msg, err.status === 404 ? 'There is no such order on your account.' : describeError(err), 'error');
    fill(root, el('div', { class: 'card' }, msg, el('a', { class: 'btn btn-secondary', href: 'orders.html', text: 'My orders' })));
    return;
  }
  draw();
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
  window.location.assign(`login.html?next=${encodeURIComponent(`order.html?id=${orderId}`)}`);
} else {
  load();
}
