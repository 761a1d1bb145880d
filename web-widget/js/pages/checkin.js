// Gate check-in for staff and admins: every scanned code goes to POST /api/checkin and the answer fills
// a big result panel — green "Checked in", amber "Already checked in" (when and by whom), red for a void
// or unknown code or a code for another event — and a running list of the last 20 scans.
//
// The gate can be bound to one event (picker at the top, published events from GET /api/events, the
// choice kept in localStorage): its id goes with every scan as `event_id`, and the server refuses a code
// for another event (409 `wrong_event`) without using it. "Any event" sends no `event_id`.
//
// Handheld scanners "type" the code and press Enter, often faster than the server answers. So the field
// is emptied and refocused at once, stays usable while a request is in flight, and the codes are checked
// one after another in the order they were scanned; the button is disabled while a check is running and
// the same code is never sent twice at the same time.

import { describeError, get, getSession, post } from '../api.js';
import { onAction } from '../forms.js';
import { renderChrome } from '../layout.js';
import { local } from '../store.js';
import { el, fill, formatWIB, isUuid, say, timeWIB } from '../util.js';

renderChrome({ active: 'checkin' });

const HISTORY = 20;
const SIGN_IN = 'login.html?next=checkin.html';
const GATE_KEY = 'qc.checkin.event.v1'; // localStorage: {id, name} of the event this gate admits to

const desk = document.getElementById('checkin-desk');
const denied = document.getElementById('checkin-denied');
const form = document.getElementById('checkin-form');
const input = document.getElementById('checkin-code');
const button = document.getElementById('checkin-submit');
const result = document.getElementById('checkin-result');
const log = document.getElementById('checkin-log');
const logEmpty = document.getElementById('checkin-log-empty');
const picker = document.getElementById('checkin-event');
const pickerHint = document.getElementById('checkin-event-hint');
const pickerStatus = document.getElementById('checkin-event-msg');
const pickerRetry = document.getElementById('checkin-event-retry');

const waiting = []; // scanned {code, gate} not yet sent
let current = null; // the code being checked right now
let working = false;
const scans = []; // the last results, newest first

function showDenied(user) {
  desk.hidden = true;
  fill(denied, el('section', { class: 'notice notice-error', id: 'checkin-not-allowed', attrs: { role: 'alert' } },
    el('h2', { text: 'Not allowed' }),
    el('p', {}, 'Check-in is for staff and administrators. You are signed in as ',
      el('strong', { text: `${user.name} (${user.email})` }), user.role ? `, whose role is ${user.role}.` : '.'),
    el('p', { text: 'If an administrator has just given you the staff role, sign out and sign in again so it takes effect.' })));
  denied.hidden = false;
}

// ---- the event at this gate ----------------------------------------------------------------------

/** The saved choice `{id, name}`, or null for "Any event". */
function savedGate() {
  const v = local.read(GATE_KEY);
  return v && isUuid(v.id) ? { id: v.id, name: typeof v.name === 'string' ? v.name : '' } : null;
}

function saveGate(choice) {
  // Storage refused (private mode, full): the choice lasts until the page is left.
  local.write(GATE_KEY, choice || null);
}

let gate = savedGate(); // the event scans are bound to, or null
let events = []; // published events, once loaded
let eventsLoaded = false;

function drawHint() {
  pickerHint.textContent = gate
    ? `Only codes for ${gate.name || 'this event'} are admitted here. A code for another event is refused and stays unused.`
    : 'Codes for every event are accepted.';
}

function drawPicker() {
  const listed = !gate || events.some((ev) => ev.id === gate.id);
  // A saved event that is not (or not yet) in the list stays chosen: the gate never quietly widens to
  // "Any event" because the list failed to load or the event was unpublished.
  const kept = listed ? null : el('option', {
    value: gate.id,
    text: eventsLoaded ? `${gate.name || 'Saved event'} (not among the published events)` : gate.name || 'Saved event',
  });
  fill(picker,
    el('option', { value: '', text: 'Any event' }),
    events.map((ev) => el('option', { value: ev.id, text: `${ev.name} — ${formatWIB(ev.starts_at)}` })),
    kept);
  picker.value = gate ? gate.id : '';
  drawHint();
}

async function loadEvents() {
  picker.setAttribute('aria-busy', 'true');
  try {
    const list = await get('/api/events?limit=100');
    events = Array.isArray(list) ? list.filter((ev) => ev && isUuid(ev.id)) : [];
    eventsLoaded = true;
    const fresh = gate && events.find((ev) => ev.id === gate.id);
    if (fresh && fresh.name !== gate.name) {
      gate = { id: fresh.id, name: fresh.name };
      saveGate(gate);
    }
    drawPicker();
    say(pickerStatus, '');
    pickerRetry.hidden = true;
  } catch (err) {
    say(pickerStatus, `Could not load the events. ${describeError(err)} Scans go on with the current choice.`, 'error');
    pickerRetry.hidden = false;
  } finally {
    picker.removeAttribute('aria-busy');
  }
}

picker.addEventListener('change', () => {
  const id = picker.value;
  if (!id) {
    gate = null;
  } else {
    const ev = events.find((e) => e.id === id);
    gate = { id, name: ev ? ev.name : (gate && gate.id === id ? gate.name : '') };
  }
  saveGate(gate);
  drawHint();
  // Back to the code field: a handheld scanner types into whatever has focus, and in the picker its
  // keystrokes would choose another event.
  input.focus();
});
onAction(pickerRetry, () => loadEvents(), { status: pickerStatus });

// ---- one code --------------------------------------------------------------------------------------

const KIND_WORDS = { ticket: 'Ticket', merchandise_pickup: 'Merchandise pickup' };

/** Sends one code (bound to the event of `bound`, if any); resolves with what to show (never rejects). */
async function checkIn(code, bound) {
  const base = { code, at: new Date().toISOString() };
  try {
    const answer = await post('/api/checkin', bound ? { code, event_id: bound.id } : { code });
    const t = (answer && answer.ticket) || {};
    const units = Number(t.quantity) > 1 ? `${t.quantity} × ` : '';
    const what = t.kind === 'merchandise_pickup' ? `Hand over ${units}${t.item_name || 'merchandise'}` : t.item_name;
    return {
      ...base,
      result: 'ok',
      headline: 'Checked in',
      short: 'checked in',
      lines: [
        [KIND_WORDS[t.kind] || 'Ticket', what],
        ['Holder', t.holder_name],
        ['Event', t.event_name],
      ],
    };
  } catch (err) {
    const d = err.detail || {};
    if (err.status === 409 && err.code === 'already_checked_in') {
      const when = d.checked_in_at ? formatWIB(d.checked_in_at) : null;
      return {
        ...base,
        result: 'already',
        headline: 'Already checked in',
        short: 'already checked in',
        lines: when || d.checked_in_by
          ? [['When', when], ['By', d.checked_in_by]]
          : [['', describeError(err)]],
      };
    }
    if (err.status === 409 && err.code === 'wrong_event') {
      return {
        ...base,
        result: 'wrong_event',
        headline: 'Ticket for another event',
        short: 'another event (not used)',
        lines: [['', describeError(err)], ['This gate', bound && bound.name]],
      };
    }
    if (err.status === 409 && err.code === 'ticket_void') {
      return { ...base, result: 'void', headline: 'Void — do not admit', short: 'void', lines: [['', describeError(err)]] };
    }
    if (err.status === 404) {
      return { ...base, result: 'unknown', headline: 'Unknown code', short: 'unknown code', lines: [['', 'No ticket or pickup has this code. Make sure the whole code was scanned.']] };
    }
    if (err.status === 401) {
      return { ...base, result: 'signin', headline: 'Signed out', short: 'not sent (signed out)', lines: [['', 'Your session has ended. Sign in again to keep scanning.']] };
    }
    if (err.status === 403) {
      return { ...base, result: 'denied', headline: 'Not allowed', short: 'not allowed', lines: [['', 'Your account cannot check tickets in: staff or admin only.']] };
    }
    if (err.status === 429) {
      return { ...base, result: 'limited', headline: 'Too many scans', short: 'not checked (too many scans)', lines: [['', describeError(err)], ['', 'This code was not checked in: scan it again.']] };
    }
    return { ...base, result: 'error', headline: 'Could not check in', short: 'not checked (error)', lines: [['', describeError(err)], ['', 'This code was not checked in: scan it again.']] };
  }
}

// ---- showing the outcome -------------------------------------------------------------------------

function showResult(o) {
  result.dataset.result = o.result;
  fill(result,
    el('p', { class: 'checkin-headline', text: o.headline }),
    el('dl', { class: 'checkin-facts' },
      o.lines.filter(([, value]) => value).map(([label, value]) => el('div', {},
        label ? el('dt', { text: label }) : null,
        el('dd', { text: value })))),
    el('p', { class: 'checkin-code mono' }, 'Code ', el('span', { text: o.code })));
}

function remember(o) {
  scans.unshift(o);
  scans.length = Math.min(scans.length, HISTORY);
  fill(log, scans.map((h) => el('li', { data: { result: h.result } },
    el('span', { class: 'checkin-time', text: timeWIB(h.at) }),
    el('span', { class: 'mono', text: h.code }),
    el('span', { class: 'checkin-short', text: h.short }))));
  logEmpty.hidden = scans.length > 0;
}

function setBusy(busy) {
  button.disabled = busy;
  if (busy) button.setAttribute('aria-busy', 'true');
  else button.removeAttribute('aria-busy');
}

async function work() {
  if (working) return;
  working = true;
  setBusy(true);
  try {
    while (waiting.length) {
      const next = waiting.shift();
      current = next.code;
      const outcome = await checkIn(next.code, next.gate);
      current = null;
      showResult(outcome);
      remember(outcome);
      if (outcome.result === 'signin') {
        waiting.length = 0;
        window.location.assign(SIGN_IN);
        return;
      }
    }
  } finally {
    current = null;
    working = false;
    setBusy(false);
  }
}

function scan() {
  const code = input.value.trim();
  input.value = '';
  input.focus();
  if (!code) return;
  if (code === current || waiting.some((w) => w.code === code)) return; // a double Enter, or the same scan twice
  waiting.push({ code, gate }); // the gate's event as it was when the code was scanned
  work();
}

// Enter in the field is handled here rather than by the form: while a check is running the button is
// disabled, and a form whose submit button is disabled ignores Enter — the next scan would be lost.
input.addEventListener('keydown', (event) => {
  if (event.key !== 'Enter' || event.isComposing) return;
  event.preventDefault();
  scan();
});
form.addEventListener('submit', (event) => {
  event.preventDefault();
  scan();
});

// ---- access ----------------------------------------------------------------------------------------

const session = getSession();
if (!session) {
  window.location.assign(SIGN_IN);
} else if (session.user.role !== 'staff' && session.user.role !== 'admin') {
  // The server decides (403 for anyone else); this only spares a buyer a form that cannot work.
  showDenied(session.user);
} else {
  desk.hidden = false;
  drawPicker();
  input.focus();
  loadEvents();
}
