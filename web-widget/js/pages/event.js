// Event detail: schedules, ticket categories and merchandise with quantity pickers, and "Add to cart".

import { describeError, get } from '../api.js';
import { addToCart, lineLimit, loadCart } from '../cart.js';
import { renderChrome } from '../layout.js';
import { admission } from '../queue-store.js';
import { stepper } from '../stepper.js';
import { count, el, fill, formatWIB, isUuid, param, rangeWIB, rupiah, say, timeWIB } from '../util.js';

renderChrome({ active: 'events' });

const root = document.getElementById('event');
const id = param('id');

function saleState(ev, now) {
  const opens = ev.sale_opens_at ? Date.parse(ev.sale_opens_at) : null;
  const closes = ev.sale_closes_at ? Date.parse(ev.sale_closes_at) : null;
  if (closes !== null && now >= closes) return { open: false, closed: true, text: `Sale closed on ${formatWIB(ev.sale_closes_at)}.` };
  if (opens !== null && now < opens) return { open: false, closed: false, text: `Sale opens ${formatWIB(ev.sale_opens_at)}. Fill your cart now and join the waiting room when it opens.` };
  return { open: true, closed: false, text: closes !== null ? `On sale until ${formatWIB(ev.sale_closes_at)}.` : 'On sale now.' };
}

function render(ev) {
  document.title = `${ev.name} — Tiket Kampus`;
  const now = Date.now();
  const sale = saleState(ev, now);
  const schedules = new Map((ev.schedules || []).map((s) => [s.id, s]));
  /** @type {Map<string, {kind, id, name, price, qty, limit}>} */
  const picks = new Map();

  const summaryLines = el('ul', { class: 'summary-lines', attrs: { 'aria-label': 'Selected items' } });
  const summaryTotal = el('span', { id: 'selection-total', text: rupiah(0) });
  const addButton = el('button', { type: 'button', class: 'btn btn-block', text: 'Add to cart', disabled: true });
  const addMsg = el('p', { class: 'form-msg', attrs: { role: 'status' }, hidden: true });
  const cartLink = el('a', { href: 'cart.html', class: 'btn btn-secondary btn-block', text: 'View cart', hidden: true });
  const steppers = [];
  const existing = loadCart();
  const otherCart = el('div', { class: 'notice', attrs: { role: 'note' }, hidden: !(existing.event_id && existing.event_id !== ev.id && existing.items.length) },
    el('p', {}, 'Your cart holds items for ', el('strong', { text: existing.event_name || 'another event' }),
      '. A cart holds one event at a time, so adding items here replaces them.'));


  const refreshSummary = () => {
    const chosen = [...picks.values()].filter((p) => p.qty > 0);
    fill(summaryLines, chosen.length === 0
      ? el('li', { class: 'muted', text: 'Nothing selected yet.' })
      : chosen.map((p) => el('li', {}, el('span', { text: `${p.qty} × ${p.name}` }), el('span', { text: rupiah(p.qty * p.price) }))));
    summaryTotal.textContent = rupiah(chosen.reduce((s, p) => s + p.qty * p.price, 0));
    addButton.disabled = chosen.length === 0;
  };

  const productCard = (kind, p) => {
    const limit = lineLimit(p);
    const soldOut = Number(p.remaining) <= 0;
    const saleEnded = kind === 'ticket' && p.sale_ends_at && Date.parse(p.sale_ends_at) <= now;
    const notYet = kind === 'ticket' && p.sale_starts_at && Date.parse(p.sale_starts_at) > now;
    const unavailable = soldOut || sale.closed || saleEnded;
    const inputId = `qty-${kind}-${p.id}`;
    const pick = stepper({
      inputId,
      name: p.name,
      max: unavailable ? 0 : limit,
      disabled: unavailable,
      onChange: (qty) => {
        picks.set(`${kind}:${p.id}`, { kind, id: p.id, name: p.name, price: p.price, qty, limit });
        refreshSummary();
      },
    });
    steppers.push(pick);
    const schedule = kind === 'ticket' && p.schedule_id ? schedules.get(p.schedule_id) : null;
    let status = null;
    if (soldOut) status = el('span', { class: 'pill pill-out', text: 'Sold out' });
    else if (saleEnded) status = el('span', { class: 'pill pill-out', text: 'Sale ended' });
    else if (notYet) status = el('span', { class: 'pill pill-warn', text: `From ${formatWIB(p.sale_starts_at, { weekday: false })}` });
    else if (Number(p.remaining) < 20) status = el('span', { class: 'pill pill-warn', text: 'Almost gone' });

    return el('article', {
      class: `card product${unavailable ? ' is-out' : ''}`,
      data: { kind, productId: p.id, name: p.name },
      attrs: { 'aria-labelledby': `${inputId}-name` },
    },
      el('div', {},
        el('h3', { id: `${inputId}-name`, text: p.name }),
        p.description ? el('p', { class: 'product-desc', text: p.description }) : null,
        el('p', { class: 'product-facts' },
          el('span', { class: 'remaining', text: soldOut ? 'None left' : `${count(p.remaining)} left` }),
          el('span', { text: `max ${p.max_per_order} per order` }),
          schedule ? el('span', { text: schedule.label || rangeWIB(schedule.starts_at, schedule.ends_at) }) : null,
          status)),
      el('div', { class: 'product-side' },
        el('span', { class: 'price', text: rupiah(p.price) }),
        pick.node));
  };

  addButton.addEventListener('click', () => {
    const chosen = [...picks.values()].filter((p) => p.qty > 0);
    if (chosen.length === 0) return;
    const { cart, notes } = addToCart(ev, chosen);
    for (const s of steppers) s.set(0);
    const units = cart.items.reduce((n, i) => n + i.qty, 0);
    say(addMsg, `Added to your cart. ${notes.join(' ')}`.trim(), notes.length ? '' : 'ok');
    cartLink.textContent = `View cart (${units})`;
    cartLink.hidden = false;
    otherCart.hidden = true;
  });

  const tickets = ev.ticket_categories || [];
  const merch = ev.merchandise || [];

  fill(root,
    el('section', { class: 'event-hero', attrs: { 'aria-labelledby': 'event-title' } },
      el('h1', { id: 'event-title', text: ev.name }),
      el('p', { class: 'meta' },
        el('span', {}, el('time', { attrs: { datetime: ev.starts_at }, text: rangeWIB(ev.starts_at, ev.ends_at) })),
        el('span', { text: ev.venue })),
      el('p', { class: `pill ${sale.open ? '' : sale.closed ? 'pill-out' : 'pill-warn'}`.trim(), text: sale.text }),
      ev.description ? el('p', { class: 'lead', text: ev.description }) : null,
      joinQueue(ev, sale)),
    otherCart,
    el('div', { class: 'layout-2' },
      el('div', {},
        schedules.size
          ? el('section', { class: 'section', attrs: { 'aria-labelledby': 'schedules-title' } },
              el('h2', { id: 'schedules-title', text: 'Schedule' }),
              el('ul', { class: 'schedule-list' }, (ev.schedules || []).map((s) => el('li', {},
                el('strong', { text: s.label || 'Show' }),
                el('span', { text: rangeWIB(s.starts_at, s.ends_at) })))))
          : null,
        el('section', { class: 'section', attrs: { 'aria-labelledby': 'tickets-title' } },
          el('div', { class: 'section-head' },
            el('h2', { id: 'tickets-title', text: 'Tickets' }),
            el('span', { class: 'muted small', text: `Up to ${ev.max_tickets_per_buyer} tickets per buyer` })),
          tickets.length
            ? el('div', { class: 'product-list', id: 'ticket-list' }, tickets.map((c) => productCard('ticket', c)))
            : el('p', { class: 'muted', text: 'Ticket categories will be announced soon.' })),
        merch.length
          ? el('section', { class: 'section', attrs: { 'aria-labelledby': 'merch-title' } },
              el('h2', { id: 'merch-title', text: 'Merchandise' }),
              el('p', { class: 'muted small', text: 'Picked up at the gate on show day. Ordered together with your tickets.' }),
              el('div', { class: 'product-list', id: 'merch-list' }, merch.map((m) => productCard('merch', m))))
          : null),
      el('aside', { class: 'card summary sticky', attrs: { 'aria-labelledby': 'summary-title' } },
        el('h2', { id: 'summary-title', text: 'Your selection' }),
        summaryLines,
        el('div', { class: 'summary-total' }, el('span', { text: 'Total' }), summaryTotal),
        el('div', { class: 'form' }, addButton, addMsg, cartLink),
        el('p', { class: 'muted small', text: 'Checkout happens after the waiting room admits you. Your cart is kept on this device.' }))));
  refreshSummary();
}

/** The way into the waiting room: the prominent call to action of the page. */
function joinQueue(ev, sale) {
  if (sale.closed) return null;
  const admitted = admission(ev.id);
  return el('div', { class: 'join-queue', id: 'join-queue' },
    el('a', {
      class: 'btn btn-large',
      id: 'join-queue-link',
      href: `queue.html?event=${encodeURIComponent(ev.id)}`,
      text: 'Join the queue',
    }),
    admitted
      ? el('span', {}, el('strong', { text: 'You have been admitted' }), ` until ${timeWIB(admitted.expires_at)} WIB — `,
          el('a', { href: 'cart.html', text: 'go to your cart' }), '.')
      : el('span', { class: 'muted', text: sale.open
        ? 'Everyone buys through the waiting room. No account needed to wait; fill your cart while you do.'
        : 'Join before the opening: places are given by a fair random draw when the sale opens.' }));
}

async function load() {
  if (!isUuid(id)) {
    fill(root, el('div', { class: 'notice notice-error', attrs: { role: 'alert' } },
      el('p', { text: 'This link does not point to an event.' }), el('a', { href: 'index.html', text: 'See all events' })));
    root.setAttribute('aria-busy', 'false');
    return;
  }
  try {
    render(await get(`/api/events/${encodeURIComponent(id)}`, { auth: false }));
  } catch (err) {
    const gone = err && err.status === 404;
    fill(root, el('div', { class: 'notice notice-error', attrs: { role: 'alert' } },
      el('p', { text: gone ? 'This event is not on sale (it may have been unpublished).' : `Could not load the event. ${describeError(err)}` }),
      gone ? el('a', { href: 'index.html', text: 'See all events' })
        : el('button', { type: 'button', class: 'btn btn-small btn-secondary', text: 'Try again', onClick: load })));
  } finally {
    root.setAttribute('aria-busy', 'false');
  }
}

load();
