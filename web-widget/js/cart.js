// The cart: one event's tickets and merchandise, kept in localStorage so it survives sign-in, reloads and
// closing the tab. Prices here are what the buyer saw; the server decides the real price at checkout.
//
// Shape: { event_id, event_name, max_tickets, items: [{ kind: 'ticket'|'merch', id, name, price, qty, limit }] }

import { sharedEntry } from './store.js';

const stored = sharedEntry('qc.cart.v1', 'qc:cart');
const KINDS = new Set(['ticket', 'merch']);

function emptyCart() {
  return { event_id: null, event_name: '', max_tickets: null, items: [] };
}

function whole(n, min, max) {
  const v = Math.trunc(Number(n));
  if (!Number.isFinite(v)) return min;
  return Math.min(Math.max(v, min), max);
}

/** Cleans whatever is stored (it may be old, hand-edited or broken) into a valid cart. */
function sanitize(raw) {
  if (!raw || typeof raw !== 'object' || typeof raw.event_id !== 'string' || !Array.isArray(raw.items)) {
    return emptyCart();
  }
  const seen = new Set();
  const items = [];
  for (const it of raw.items) {
    if (!it || !KINDS.has(it.kind) || typeof it.id !== 'string' || seen.has(`${it.kind}:${it.id}`)) continue;
    const limit = whole(it.limit ?? 100, 0, 100);
    const qty = whole(it.qty, 0, limit);
    if (qty < 1) continue;
    seen.add(`${it.kind}:${it.id}`);
    items.push({
      kind: it.kind,
      id: it.id,
      name: String(it.name ?? ''),
      price: whole(it.price, 0, 1e12),
      qty,
      limit,
    });
  }
  return {
    event_id: raw.event_id,
    event_name: String(raw.event_name ?? ''),
    max_tickets: raw.max_tickets == null ? null : whole(raw.max_tickets, 1, 100),
    items,
  };
}

export function loadCart() {
  return sanitize(stored.read());
}

export function saveCart(cart) {
  const clean = sanitize(cart);
  stored.write(clean.items.length === 0 ? null : clean);
  return clean;
}

export function clearCart() {
  stored.write(null);
}

/** Calls `fn` when the cart changes in this tab or another one. */
export function onCartChange(fn) {
  stored.onChange(fn);
}

export function ticketCount(cart) {
  return cart.items.filter((i) => i.kind === 'ticket').reduce((n, i) => n + i.qty, 0);
}

export function totals(cart) {
  let units = 0;
  let total = 0;
  for (const i of cart.items) {
    units += i.qty;
    total += i.qty * i.price;
  }
  return { units, total, tickets: ticketCount(cart) };
}

/** The limit of one line: per-order maximum and what is left, whichever is lower. */
export function lineLimit(product) {
  return Math.max(0, Math.min(Number(product.max_per_order) || 0, Number(product.remaining) || 0));
}

/**
 * Adds selections from one event page. A cart holding another event is replaced (the page warns first).
 * Quantities are capped by each line's limit and by the event's tickets-per-buyer maximum.
 * Returns `{ cart, notes }`, where notes explain any quantity that was capped.
 *
 * @param {{id:string, name:string, max_tickets_per_buyer?:number}} event
 * @param {{kind:'ticket'|'merch', id:string, name:string, price:number, qty:number, limit:number}[]} picks
 */
export function addToCart(event, picks) {
  let cart = loadCart();
  if (cart.event_id !== event.id) cart = { ...emptyCart(), event_id: event.id };
  cart.event_name = event.name;
  cart.max_tickets = event.max_tickets_per_buyer ?? cart.max_tickets;
  const notes = [];
  for (const pick of picks) {
    if (!(pick.qty > 0)) continue;
    let line = cart.items.find((i) => i.kind === pick.kind && i.id === pick.id);
    if (!line) {
      line = { kind: pick.kind, id: pick.id, name: pick.name, price: pick.price, qty: 0, limit: pick.limit };
      cart.items.push(line);
    }
    line.name = pick.name;
    line.price = pick.price;
    line.limit = pick.limit;
    let wanted = line.qty + pick.qty;
    if (wanted > line.limit) {
      notes.push(`${pick.name}: at most ${line.limit} per order.`);
      wanted = line.limit;
    }
    if (pick.kind === 'ticket' && cart.max_tickets) {
      const others = ticketCount(cart) - line.qty;
      const room = Math.max(0, cart.max_tickets - others);
      if (wanted > room) {
        notes.push(`At most ${cart.max_tickets} tickets per buyer for this event.`);
        wanted = room;
      }
    }
    line.qty = wanted;
  }
  return { cart: saveCart(cart), notes };
}

/**
 * Sets one line's quantity (0 removes it), capped the same way as adding. Returns the quantity kept.
 */
export function setQuantity(kind, id, qty) {
  const cart = loadCart();
  const line = cart.items.find((i) => i.kind === kind && i.id === id);
  if (!line) return 0;
  let q = whole(qty, 0, line.limit);
  if (kind === 'ticket' && cart.max_tickets) {
    q = Math.min(q, Math.max(0, cart.max_tickets - (ticketCount(cart) - line.qty)));
  }
  line.qty = q;
  saveCart(cart);
  return q;
}

export function removeLine(kind, id) {
  const cart = loadCart();
  cart.items = cart.items.filter((i) => !(i.kind === kind && i.id === id));
  saveCart(cart);
}

/**
 * Brings the stored cart in line with the event as the API shows it now: current names, prices and
 * limits; lines whose product is gone or sold out are dropped. Returns human-readable notes of changes.
 */
export function reconcile(event) {
  const cart = loadCart();
  if (cart.event_id !== event.id) return [];
  const notes = [];
  const products = {
    ticket: new Map((event.ticket_categories || []).map((c) => [c.id, c])),
    merch: new Map((event.merchandise || []).map((m) => [m.id, m])),
  };
  cart.event_name = event.name;
  cart.max_tickets = event.max_tickets_per_buyer ?? cart.max_tickets;
  const kept = [];
  for (const line of cart.items) {
    const p = products[line.kind].get(line.id);
    if (!p) {
      notes.push(`${line.name} is no longer on sale and was removed.`);
      continue;
    }
    const limit = lineLimit(p);
    if (limit === 0) {
      notes.push(`${p.name} is sold out and was removed.`);
      continue;
    }
    if (p.price !== line.price) notes.push(`The price of ${p.name} changed.`);
    if (line.qty > limit) notes.push(`${p.name}: only ${limit} can be ordered now.`);
    kept.push({ ...line, name: p.name, price: p.price, limit, qty: Math.min(line.qty, limit) });
  }
  cart.items = kept;
  if (cart.max_tickets && ticketCount(cart) > cart.max_tickets) {
    notes.push(`At most ${cart.max_tickets} tickets per buyer for this event.`);
    let excess = ticketCount(cart) - cart.max_tickets;
    for (let i = cart.items.length - 1; i >= 0 && excess > 0; i--) {
      const line = cart.items[i];
      if (line.kind !== 'ticket') continue;
      const cut = Math.min(excess, line.qty);
      line.qty -= cut;
      excess -= cut;
    }
  }
  const before = JSON.stringify(loadCart());
  const after = saveCart(cart);
  return JSON.stringify(after) === before ? [] : notes;
}
