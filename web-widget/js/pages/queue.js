// The waiting room of one event (queue.html?event=<id>): join (or rejoin with the credential this tab
// kept), then follow the live channel — position and wait, the pre-sale draw with its published seed hash,
// pauses, live stock — until the visitor's turn comes, when the admission token is stored for checkout.

import { get } from '../api.js';
import { loadCart } from '../cart.js';
import { renderChrome } from '../layout.js';
import { createQueueChannel, queueRequest } from '../queue-client.js';
import { admission, forgetAdmission, forgetVisitor, saveAdmission, saveVisitorToken, visitorToken } from '../queue-store.js';
import { clock, count, el, etaText, fill, formatWIB, isUuid, param, timeWIB } from '../util.js';

renderChrome({ active: 'events' });

const $ = (id) => document.getElementById(id);
const eventId = param('event');
const card = $('queue');
const SECTIONS = ['joining', 'waiting', 'prequeue', 'admitted', 'left', 'error'];
const TRANSPORT_NAMES = { websocket: 'WebSocket', sse: 'Server-Sent Events', polling: 'polling' };

const view = {
  state: 'joining',
  paused: false,
  maxAhead: 0,
  saleOpensAt: null,
  expiresAt: null,
};
let channel = null;
let joinTimer = null;
let admittedTimer = null;
let prequeueTimer = null;
let joining = false;
const stock = { ticket: new Map(), merch: new Map() }; // id → {name, remaining}
let soldOut = false;

// ---- small view helpers -----------------------------------------------------------------------

function show(state) {
  view.state = state;
  card.dataset.state = state;
  for (const s of SECTIONS) $(`queue-${s}`).hidden = s !== state;
}

let lastAnnouncedAt = 0;
/** Tells screen-reader users what changed: state changes at once, position changes at most every 20 s. */
function announce(text, { urgent = false } = {}) {
  const region = $('queue-announcer');
  if (!urgent && Date.now() - lastAnnouncedAt < 20_000) return;
  if (region.textContent === text) return;
  lastAnnouncedAt = Date.now();
  region.textContent = text;
}

function setText(id, text) {
  const node = $(id);
  if (node.textContent !== text) node.textContent = text;
}

// ---- states -----------------------------------------------------------------------------------

function showWaiting(m) {
  const first = view.state !== 'waiting';
  if (first) show('waiting');
  const position = Math.max(1, Number(m.position) || 1);
  const ahead = Math.max(0, Number(m.people_ahead ?? position - 1) || 0);
  view.maxAhead = Math.max(view.maxAhead, ahead);
  setText('queue-position', count(position));
  setText('queue-ahead', ahead === 0 ? 'Nobody — you are next' : count(ahead));
  if (m.eta_secs) view.eta = m.eta_secs;
  setText('queue-eta', view.paused ? 'Paused' : view.eta ? etaText(view.eta) : 'Calculating…');
  if (m.waiting != null) setText('queue-total', `${count(m.waiting)} ${Number(m.waiting) === 1 ? 'person' : 'people'}`);
  $('queue-soldout-warning').hidden = !m.likely_sold_out;
  const pct = view.maxAhead > 0 ? Math.round(100 * (1 - ahead / view.maxAhead)) : ahead === 0 ? 100 : 0;
  $('queue-bar').setAttribute('aria-valuenow', String(pct));
  $('queue-bar-fill').style.width = `${pct}%`;
  const said = `You are number ${position} in line${ahead ? `, ${ahead} ${ahead === 1 ? 'person' : 'people'} ahead of you` : ', next in line'}.`;
  announce(first ? `You are in the queue. ${said}` : said, { urgent: first });
  if (m.likely_sold_out && !view.warnedSoldOut) {
    view.warnedSoldOut = true;
    announce('Warning: tickets are likely to sell out before your turn.', { urgent: true });
  }
}

function setPaused(paused) {
  if (paused === view.paused) return;
  view.paused = paused;
  $('queue-paused').hidden = !paused;
  card.dataset.paused = String(paused);
  if (view.state === 'waiting') {
    setText('queue-eta', paused ? 'Paused' : view.eta ? etaText(view.eta) : 'Calculating…');
    announce(paused ? 'Admissions are paused. You keep your place.' : 'Admissions have resumed.', { urgent: true });
  }
}

function showPrequeue(m) {
  const first = view.state !== 'prequeue';
  if (first) show('prequeue');
  const opens = m.sale_opens_at || view.saleOpensAt;
  if (opens) view.saleOpensAt = opens;
  setText('prequeue-opens', opens ? formatWIB(opens) : 'soon');
  if (m.seed_hash) {
    setText('seed-hash', m.seed_hash);
    $('fairness').hidden = false;
    // Kept in view after the draw too, next to the place it gave.
    setText('queue-draw-hash', m.seed_hash);
    $('queue-draw-note').hidden = false;
  }
  if (m.prequeue != null) {
    const n = Number(m.prequeue);
    setText('prequeue-count', `${count(n)} ${n === 1 ? 'person is' : 'people are'} waiting for the draw.`);
  }
  if (!prequeueTimer) {
    const tick = () => {
      const left = view.saleOpensAt ? Date.parse(view.saleOpensAt) - Date.now() : NaN;
      $('prequeue-countdown-wrap').hidden = !(left > 0);
      if (left > 0) setText('prequeue-countdown', clock(left));
      else setText('prequeue-opens', 'now — the draw is being made');
    };
    tick();
    prequeueTimer = setInterval(tick, 1000);
  }
  if (first) announce('The sale has not opened yet. At the opening, places are given by a random draw.', { urgent: true });
}

function leavePrequeue() {
  clearInterval(prequeueTimer);
  prequeueTimer = null;
}

function showAdmitted(m) {
  leavePrequeue();
  const expires = Date.parse(m.expires_at);
  if (Number.isNaN(expires) || expires <= Date.now()) {
    showLeft('expired');
    return;
  }
  saveAdmission(eventId, m);
  view.expiresAt = expires;
  // Nothing more to wait for.
  if (channel) channel.stop();
  const first = view.state !== 'admitted';
  show('admitted');
  setText('admitted-until', ` (until ${timeWIB(m.expires_at)} WIB)`);
  const cart = loadCart();
  const cartHere = cart.event_id === eventId && cart.items.length > 0;
  $('choose-tickets').hidden = cartHere;
  $('to-cart').textContent = cartHere ? 'Go to your cart' : 'Go to your cart (empty)';
  clearInterval(admittedTimer);
  const tick = () => {
    const left = view.expiresAt - Date.now();
    if (left <= 0) {
      forgetAdmission(eventId);
      showLeft('expired');
      return;
    }
    setText('admitted-countdown', clock(left));
  };
  tick();
  admittedTimer = setInterval(tick, 1000);
  if (first) {
    announce(`It's your turn! Your place is held until ${timeWIB(m.expires_at)} WIB. Go to your cart to check out.`, { urgent: true });
    document.title = 'Your turn! — Tiket Kampus';
  }
}

const LEFT_REASONS = {
  left: ['You\'re no longer in the queue', 'Your turn passed, or this page was away for too long, so your place was given to the next person.'],
  expired: ['Your turn has expired', 'The time you had to check out ran out, so your admission was given up.'],
};

function showLeft(reason) {
  leavePrequeue();
  clearInterval(admittedTimer);
  if (channel) channel.stop();
  const [title, text] = LEFT_REASONS[reason] || LEFT_REASONS.left;
  setText('left-title', title);
  setText('left-reason', text);
  show('left');
  announce(`${title}. ${text} You can join the queue again.`, { urgent: true });
}

function showError(text, actions = []) {
  leavePrequeue();
  if (channel) channel.stop();
  setText('queue-error-text', text);
  fill($('queue-error-actions'), actions);
  show('error');
}

// ---- stock ------------------------------------------------------------------------------------

function drawStock() {
  const draw = (kind, listId) => {
    const list = $(listId);
    const entries = [...stock[kind].entries()];
    if (entries.length === 0) {
      if (kind === 'ticket') fill(list, el('li', { class: 'muted', text: 'No ticket categories yet.' }));
      return;
    }
    for (const [id, s] of entries) {
      let row = list.querySelector(`li[data-stock-id="${CSS.escape(id)}"]`);
      if (!row) {
        list.querySelector('li:not([data-stock-id])')?.remove();
        row = el('li', { data: { stockId: id } }, el('span', { class: 'stock-name' }), el('span', { class: 'stock-left' }));
        list.append(row);
      }
      const name = s.name || (kind === 'ticket' ? 'Other tickets' : 'Other merchandise');
      row.dataset.name = name;
      row.children[0].textContent = name;
      const remaining = Number(s.remaining) || 0;
      row.children[1].textContent = remaining > 0 ? `${count(remaining)} left` : 'Sold out';
      row.classList.toggle('is-out', remaining <= 0);
      row.classList.toggle('is-low', remaining > 0 && remaining < 20);
    }
  };
  draw('ticket', 'stock-tickets');
  draw('merch', 'stock-merch');
  $('stock-merch').hidden = stock.merch.size === 0;
  $('stock-merch-head').hidden = stock.merch.size === 0;
  $('stock-soldout').hidden = !soldOut;
}

function applyStock(m) {
  for (const [kind, lines] of [['ticket', m.ticket_categories], ['merch', m.merchandise]]) {
    for (const line of Array.isArray(lines) ? lines : []) {
      const s = stock[kind].get(line.id);
      if (s) s.remaining = line.remaining;
      else stock[kind].set(line.id, { name: null, remaining: line.remaining });
    }
  }
  soldOut = !!m.sold_out;
  drawStock();
}

// ---- channel ----------------------------------------------------------------------------------

function onMessage(m) {
  switch (m.type) {
    case 'position':
      if (view.state === 'admitted' || view.state === 'left') return;
      leavePrequeue();
      setPaused(!!m.paused);
      showWaiting(m);
      break;
    case 'pre_queue':
      if (view.state === 'admitted' || view.state === 'left') return;
      showPrequeue(m);
      break;
    case 'admitted':
      showAdmitted(m);
      break;
    case 'stock':
      applyStock(m);
      break;
    case 'paused':
      setPaused(!!m.paused);
      break;
    case 'left':
      forgetAdmission(eventId);
      showLeft('left');
      break;
    default:
      break; // a message type this page does not know yet
  }
}

const used = new Set();
function onChannelState({ transport, phase, retryInMs }) {
  const line = $('queue-connection');
  line.dataset.transport = transport || '';
  line.dataset.phase = phase;
  if (phase === 'live' && transport) {
    used.add(transport);
    line.dataset.lastTransport = transport;
    line.dataset.transportsUsed = [...used].join(' ');
  }
  let text = '';
  if (phase === 'connecting') text = 'Connecting for live updates…';
  else if (phase === 'live') {
    text = transport === 'polling' ? 'Checking for updates every 2 seconds.' : `Live updates connected (${TRANSPORT_NAMES[transport]}).`;
  } else if (phase === 'retrying') {
    text = `Connection lost — reconnecting in ${Math.max(1, Math.round((retryInMs || 0) / 1000))} s… You keep your place.`;
  }
  setText('queue-connection', text);
}

function connect(token) {
  if (!channel) {
    channel = createQueueChannel({
      eventId,
      token,
      onMessage,
      onState: onChannelState,
      onUnauthorized: () => {
        // The server no longer accepts this credential (e.g. its key changed): join afresh.
        forgetVisitor(eventId);
        join({ fresh: true });
      },
    });
  }
  channel.restart(token);
}

// ---- joining ----------------------------------------------------------------------------------

function joinErrorText(err) {
  if (err.status === 404) return 'This event is not on sale (it may have been unpublished), so it has no waiting room.';
  if (err.code === 'sale_closed') return 'The sale for this event has closed.';
  if (err.status === 429) return 'Too many attempts from your connection.';
  if (err.status === 503) return 'The waiting room is briefly unavailable.';
  if (err.status === 0) return 'Could not reach the server. Check your connection.';
  return `Could not join the queue (${err.message || `error ${err.status}`}).`;
}

let joinAttempts = 0;
async function join({ fresh = false } = {}) {
  if (joining) return;
  joining = true;
  clearTimeout(joinTimer);
  if (channel) channel.stop();
  if (view.state === 'left' || view.state === 'error') {
    view.maxAhead = 0;
    setText('queue-joining-text', 'Joining the queue…');
    show('joining');
  }
  const stored = fresh ? null : visitorToken(eventId);
  const path = `/api/events/${encodeURIComponent(eventId)}/queue${stored ? `?visitor_token=${encodeURIComponent(stored)}` : ''}`;
  let answer;
  try {
    answer = await queueRequest(path, { method: 'POST' });
  } catch (err) {
    joining = false;
    const final = err.status === 404 || err.code === 'sale_closed';
    const text = joinErrorText(err);
    if (final) {
      showError(text, [el('a', { class: 'btn btn-small btn-secondary', href: err.status === 404 ? 'index.html' : `event.html?id=${encodeURIComponent(eventId)}`, text: err.status === 404 ? 'See all events' : 'Back to the event' })]);
      return;
    }
    // Busy or unreachable: try again by itself, sooner when the server says when.
    joinAttempts += 1;
    const secs = err.retryAfter ?? Math.min(30, 2 ** Math.min(joinAttempts, 5));
    showError(`${text} Trying again in ${secs} s…`, [el('button', { type: 'button', class: 'btn btn-small btn-secondary', text: 'Try now', onClick: () => join() })]);
    joinTimer = setTimeout(() => join(), secs * 1000);
    return;
  }
  joining = false;
  joinAttempts = 0;
  saveVisitorToken(eventId, answer.visitor_token);
  card.dataset.joinStatus = answer.status;
  if (answer.sale_opens_at) view.saleOpensAt = answer.sale_opens_at;
  if (answer.status === 'waiting') {
    showWaiting({ position: answer.position, people_ahead: answer.people_ahead });
  } else if (answer.status === 'pre_queue') {
    showPrequeue({ sale_opens_at: answer.sale_opens_at });
  } else if (answer.status === 'admitted') {
    const kept = admission(eventId);
    if (kept) showAdmitted(kept);
    else {
      show('joining');
      setText('queue-joining-text', 'Your turn has come — fetching your admission…');
    }
  }
  // Also when already admitted: the channel's first message refreshes the admission token and expiry.
  connect(answer.visitor_token);
}

// ---- event details (names for the stock list) -------------------------------------------------

async function loadEvent() {
  try {
    const ev = await get(`/api/events/${encodeURIComponent(eventId)}`, { auth: false });
    document.title = `Waiting room: ${ev.name} — Tiket Kampus`;
    setText('queue-title', `Waiting room: ${ev.name}`);
    setText('queue-event', `${formatWIB(ev.starts_at)} · ${ev.venue}`);
    $('back-to-event').href = `event.html?id=${encodeURIComponent(ev.id)}`;
    $('choose-tickets').href = `event.html?id=${encodeURIComponent(ev.id)}`;
    for (const [kind, items] of [['ticket', ev.ticket_categories], ['merch', ev.merchandise]]) {
      for (const p of items || []) {
        const s = stock[kind].get(p.id);
        // Live stock (if it arrived first) wins over the catalogue's figure.
        if (s) s.name = p.name;
        else stock[kind].set(p.id, { name: p.name, remaining: p.remaining });
      }
    }
    drawStock();
  } catch {
    // The join answer says what is wrong with the event; the stock list just keeps its ids.
    drawStock();
  }
}

// ---- start ------------------------------------------------------------------------------------

/** A visitor handed over from the embeddable widget: #visitor_token=… (a fragment is never sent to servers). */
function adoptHandover() {
  const hash = new URLSearchParams(window.location.hash.replace(/^#/, ''));
  const token = hash.get('visitor_token');
  if (token && /^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) saveVisitorToken(eventId, token);
  if (hash.has('visitor_token')) history.replaceState(null, '', window.location.pathname + window.location.search);
}

$('rejoin').addEventListener('click', () => join());

if (!isUuid(eventId)) {
  showError('This link does not point to an event.', [el('a', { class: 'btn btn-small btn-secondary', href: 'index.html', text: 'See all events' })]);
  fill($('stock-tickets'));
} else {
  adoptHandover();
  loadEvent();
  join();
}
