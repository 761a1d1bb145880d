// E-tickets of one paid order (GET /api/orders/{id}/tickets): a card per ticket with its QR code, the
// code in text under it and its state (valid, checked in at …, void), and the merchandise pickup codes in
// a section of their own. Prints cleanly (see `@media print` in site.css).

import { describeError, get, getSession } from '../api.js';
import { renderChrome } from '../layout.js';
import { qrBox } from '../qr.js';
import { el, fill, formatWIB, isUuid, param, say } from '../util.js';

renderChrome({ active: 'orders' });

const root = document.getElementById('tickets-root');
const eventLine = document.getElementById('tickets-event');
const actions = document.getElementById('tickets-actions');
const orderId = param('id');
const here = `tickets.html?id=${encodeURIComponent(orderId || '')}`;
const orderHref = `order.html?id=${encodeURIComponent(orderId || '')}`;

function statusBadge(t) {
  if (t.status === 'checked_in') {
    const when = t.checked_in_at ? ` at ${formatWIB(t.checked_in_at)}` : '';
    return el('span', { class: 'pill pill-warn ticket-status', text: `${t.kind === 'merchandise_pickup' ? 'Picked up' : 'Checked in'}${when}` });
  }
  if (t.status === 'void') return el('span', { class: 'pill pill-out ticket-status', text: 'Void' });
  return el('span', { class: 'pill ticket-status', text: 'Valid' });
}

/** The code in groups of four, easier to read out or type at a desk (the gate ignores the spaces). */
function grouped(code) {
  const c = String(code || '');
  return /^[A-Za-z0-9]{9,}$/.test(c) ? c.replace(/(.{4})(?=.)/g, '$1 ') : c;
}

function ticketCard(t) {
  const merch = t.kind === 'merchandise_pickup';
  const title = merch && t.quantity > 1 ? `${t.quantity} × ${t.item_name}` : t.item_name;
  return el('article', { class: `card ticket-card${t.status === 'void' ? ' is-void' : ''}`, data: { code: t.code, status: t.status, kind: t.kind } },
    el('div', { class: 'ticket-top' },
      el('div', { class: 'ticket-what' },
        el('span', { class: `kind${merch ? ' kind-merch' : ''}`, text: merch ? 'Merchandise pickup' : 'Ticket' }),
        el('h3', { class: 'ticket-item', text: title || '' })),
      statusBadge(t)),
    t.holder_name ? el('p', { class: 'ticket-holder' }, el('span', { class: 'muted', text: merch ? 'For ' : 'Holder ' }), el('strong', { text: t.holder_name })) : null,
    qrBox(t.qr_svg, `${merch ? 'Pickup' : 'Ticket'} QR code ${t.code}`),
    el('p', { class: 'ticket-code mono', text: grouped(t.code) }),
    t.status === 'void' ? el('p', { class: 'small void-note', text: 'This code is no longer valid (refunded or cancelled).' }) : null);
}

function showProblem(text, withOrderLink = true) {
  const msg = el('p', { class: 'form-msg', id: 'tickets-msg' });
  say(msg, text, 'error');
  fill(root, el('div', { class: 'card' }, msg,
    el('p', { class: 'actions' },
      withOrderLink ? el('a', { class: 'btn btn-secondary', href: orderHref, text: 'Back to the order' }) : null,
      el('a', { class: 'btn btn-secondary', href: 'orders.html', text: 'My orders' }))));
}

async function load() {
  let data;
  try {
    data = await get(`/api/orders/${encodeURIComponent(orderId)}/tickets`);
  } catch (err) {
    if (err.status === 401) {
      window.location.assign(`login.html?next=${encodeURIComponent(here)}`);
      return;
    }
    if (err.status === 404) showProblem('There is no such order on your account.', false);
    else if (err.code === 'not_paid') showProblem('This order is not paid, so it has no e-tickets. Its page shows what is still to do.');
    else showProblem(describeError(err));
    return;
  }

  const all = Array.isArray(data.tickets) ? data.tickets : [];
  const tickets = all.filter((t) => t.kind !== 'merchandise_pickup');
  const pickups = all.filter((t) => t.kind === 'merchandise_pickup');
  if (data.event_name) {
    eventLine.textContent = data.event_name;
    document.title = `E-tickets: ${data.event_name} — Tiket Kampus`;
  }

  fill(actions,
    el('button', { type: 'button', id: 'print-tickets', class: 'btn btn-secondary', text: 'Print', onClick: () => window.print() }),
    el('a', { class: 'btn btn-ghost', href: orderHref, text: 'Order details' }));
  actions.hidden = false;

  fill(root,
    el('section', { class: 'tickets-section', attrs: { 'aria-labelledby': 'tickets-title' } },
      el('h2', { id: 'tickets-title', text: tickets.length === 1 ? 'Ticket' : `Tickets (${tickets.length})` }),
      tickets.length
        ? el('div', { id: 'ticket-cards', class: 'ticket-grid' }, tickets.map(ticketCard))
        : el('p', { class: 'muted', text: 'This order has no admission tickets.' })),
    pickups.length
      ? el('section', { class: 'tickets-section pickup-section', attrs: { 'aria-labelledby': 'pickup-title' } },
        el('h2', { id: 'pickup-title', text: 'Merchandise pickup' }),
        el('p', { class: 'notice', id: 'pickup-hint', text: 'Show this code at the merchandise desk to collect your items.' }),
        el('div', { id: 'pickup-cards', class: 'ticket-grid' }, pickups.map(ticketCard)))
      : null,
    el('p', { class: 'muted small tickets-foot', text: `Order ${data.order_id || orderId}. Keep these codes to yourself: whoever shows a code first is let in.` }));
}

if (!isUuid(orderId)) {
  fill(root, el('div', { class: 'card' }, el('p', { text: 'This link does not name an order.' }),
    el('a', { class: 'btn btn-secondary', href: 'orders.html', text: 'My orders' })));
} else if (!getSession()) {
  window.location.assign(`login.html?next=${encodeURIComponent(here)}`);
} else {
  load();
}
