// My orders: every order of the signed-in buyer, newest first, each linking to order.html (and, once
// paid, to its e-tickets).

import { describeError, get, getSession } from '../api.js';
import { renderChrome } from '../layout.js';
import { hasTickets, statusPillClass, statusText } from '../orders.js';
import { dataTable, el, fill, formatWIB, rupiah, say } from '../util.js';

renderChrome({ active: 'orders' });

const root = document.getElementById('orders-root');

async function load() {
  let orders;
  let names = new Map();
  try {
    orders = await get('/api/orders');
  } catch (err) {
    if (err.status === 401) {
      window.location.assign('login.html?next=orders.html');
      return;
    }
    const msg = el('p', { class: 'form-msg' });
    say(msg, describeError(err), 'error');
    fill(root, el('div', { class: 'card' }, msg));
    return;
  }
  try {
    const events = await get('/api/events', { auth: false });
    names = new Map((events || []).map((e) => [e.id, e.name]));
  } catch {
    /* names are a nicety */
  }
  if (!orders.length) {
    fill(root, el('div', { class: 'card empty' },
      el('h2', { text: 'No orders yet' }),
      el('p', { class: 'muted', text: 'When you place an order it shows up here.' }),
      el('a', { class: 'btn', href: 'index.html', text: 'Browse events' })));
    return;
  }
  orders.sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
  const rows = orders.map((o) => el('tr', { data: { orderId: o.id, status: o.status } },
    el('td', {}, el('a', { href: `order.html?id=${encodeURIComponent(o.id)}`, text: names.get(o.event_id) || 'Order' }),
      el('div', { class: 'muted small', text: formatWIB(o.created_at) })),
    el('td', { text: o.items.map((i) => `${i.quantity} × ${i.name}`).join(', ') }),
    el('td', { class: 'num', text: rupiah(o.total), attrs: { 'data-label': 'Total' } }),
    el('td', {}, el('span', { class: `${statusPillClass(o.status)} order-status`, text: statusText(o.status) }),
      hasTickets(o.status)
        ? el('div', { class: 'small' }, el('a', { class: 'tickets-link', href: `tickets.html?id=${encodeURIComponent(o.id)}`, text: 'E-tickets' }))
        : null)));
  fill(root, el('section', { class: 'card' },
    dataTable('orders-table', ['Order', 'Items', { label: 'Total', num: true }, 'Status'], rows)));
}

if (!getSession()) window.location.assign('login.html?next=orders.html');
else load();
