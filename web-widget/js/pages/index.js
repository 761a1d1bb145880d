// Landing page: the published events (GET /api/events), open to guests.

import { describeError, get } from '../api.js';
import { renderChrome } from '../layout.js';
import { count, dateBadge, el, fill, formatWIB, rupiah } from '../util.js';

renderChrome({ active: 'events' });

const list = document.getElementById('events');
const counter = document.getElementById('events-count');

function saleLine(ev, now) {
  const opens = ev.sale_opens_at ? Date.parse(ev.sale_opens_at) : null;
  const closes = ev.sale_closes_at ? Date.parse(ev.sale_closes_at) : null;
  if (closes !== null && now >= closes) return el('span', { class: 'pill pill-out', text: 'Sale closed' });
  if (opens !== null && now < opens) return el('span', { class: 'pill pill-warn', text: `Sale opens ${formatWIB(ev.sale_opens_at, { weekday: false })}` });
  return null;
}

function stockPill(ev) {
  const left = Number(ev.tickets_remaining) || 0;
  if (left <= 0) return el('span', { class: 'pill pill-out', text: 'Sold out' });
  return el('span', { class: left < 100 ? 'pill pill-warn' : 'pill', text: `${count(left)} ticket${left === 1 ? '' : 's'} left` });
}

function card(ev, now) {
  const badge = dateBadge(ev.starts_at);
  const href = `event.html?id=${encodeURIComponent(ev.id)}`;
  return el('article', { class: 'card event-card', data: { eventId: ev.id } },
    el('div', { class: 'event-card-top' },
      el('div', { class: 'date-badge', attrs: { 'aria-hidden': 'true' } },
        el('span', { class: 'm', text: badge.month }),
        el('span', { class: 'd', text: badge.day })),
      el('div', {},
        el('h3', {}, el('a', { href, text: ev.name })),
        el('p', { class: 'meta' },
          el('span', { class: 'event-date' }, el('time', { attrs: { datetime: ev.starts_at }, text: formatWIB(ev.starts_at) })),
          el('span', { class: 'event-venue', text: ev.venue })))),
    ev.description ? el('p', { class: 'muted small', text: ev.description }) : null,
    el('div', { class: 'event-card-foot' },
      ev.from_price == null
        ? el('span', { class: 'price-from muted', text: 'Tickets coming soon' })
        : el('span', { class: 'price-from' }, el('small', { text: 'from' }), rupiah(ev.from_price)),
      el('span', { class: 'actions' }, saleLine(ev, now), stockPill(ev))));
}

async function load() {
  try {
    const events = await get('/api/events', { auth: false });
    const now = Date.now();
    if (!Array.isArray(events) || events.length === 0) {
      fill(list, el('div', { class: 'card empty' },
        el('h3', { text: 'No events on sale yet' }),
        el('p', { class: 'muted', text: 'New campus concerts appear here as soon as they are announced. Check back soon!' })));
      counter.textContent = '';
    } else {
      fill(list, events.map((ev) => card(ev, now)));
      counter.textContent = `${events.length} event${events.length === 1 ? '' : 's'}`;
    }
  } catch (err) {
    fill(list, el('div', { class: 'notice notice-error', attrs: { role: 'alert' } },
      el('p', { text: `Could not load events. ${describeError(err)}` }),
      el('button', { type: 'button', class: 'btn btn-small btn-secondary', text: 'Try again', onClick: load })));
  } finally {
    list.setAttribute('aria-busy', 'false');
  }
}

load();
