// Small shared helpers: money and time formatting, safe DOM building, query strings.
//
// Nothing here ever assigns API text to innerHTML: `el()` puts strings in as text nodes, so a name like
// "<img onerror=…>" is shown literally instead of being parsed.

/** Indonesian rupiah as the storefront shows it: "Rp 150.000" (dot groups, no decimals). */
export function rupiah(amount) {
  const n = Math.trunc(Number(amount) || 0);
  const digits = Math.abs(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, '.');
  return `${n < 0 ? '-' : ''}Rp ${digits}`;
}

/** A count with Indonesian thousands separators: 2900 → "2.900". */
export function count(n) {
  return Math.trunc(Number(n) || 0).toString().replace(/\B(?=(\d{3})+(?!\d))/g, '.');
}

const WIB = 'Asia/Jakarta';
const WIB_OFFSET_MS = 7 * 3600 * 1000; // Western Indonesia Time, UTC+7 all year (no daylight saving)

function parts(iso, options) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return null;
  const out = {};
  for (const p of new Intl.DateTimeFormat('en-GB', { timeZone: WIB, ...options }).formatToParts(date)) {
    out[p.type] = p.value;
  }
  return out;
}

/** "Fri, 25 Dec 2026, 19:30 WIB" (or without the time). Empty string for a missing or bad date. */
export function formatWIB(iso, { time = true, weekday = true } = {}) {
  if (!iso) return '';
  const p = parts(iso, {
    weekday: weekday ? 'short' : undefined,
    day: 'numeric',
    month: 'short',
    year: 'numeric',
    hour: time ? '2-digit' : undefined,
    minute: time ? '2-digit' : undefined,
    hourCycle: 'h23',
  });
  if (!p) return '';
  const day = `${weekday ? `${p.weekday}, ` : ''}${p.day} ${p.month} ${p.year}`;
  return time ? `${day}, ${p.hour}:${p.minute} WIB` : day;
}

/** Only the time of day in WIB: "19:30". */
export function timeWIB(iso) {
  const p = parts(iso, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  return p ? `${p.hour}:${p.minute}` : '';
}

/** A start–end range in WIB, dropping the repeated date when both fall on the same day. */
export function rangeWIB(start, end) {
  if (!end) return formatWIB(start);
  const sameDay = formatWIB(start, { time: false }) === formatWIB(end, { time: false });
  return sameDay
    ? `${formatWIB(start, { time: false })}, ${timeWIB(start)}–${timeWIB(end)} WIB`
    : `${formatWIB(start)} – ${formatWIB(end)}`;
}

/** Day-of-month and short month in WIB, for the date badge on event cards. */
export function dateBadge(iso) {
  const p = parts(iso, { day: 'numeric', month: 'short' });
  return p ? { day: p.day, month: p.month.toUpperCase() } : { day: '?', month: '' };
}

/** `<input type="datetime-local">` value showing `iso` in WIB ("2026-12-25T19:30"). */
export function toWibInput(iso) {
  if (!iso) return '';
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return '';
  return new Date(t + WIB_OFFSET_MS).toISOString().slice(0, 16);
}

/** RFC 3339 timestamp for a datetime-local value read as WIB; null when empty. */
export function fromWibInput(value) {
  const v = (value || '').trim();
  if (!v) return null;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(v)) throw new Error(`"${v}" is not a date and time`);
  return `${v.length === 16 ? `${v}:00` : v}+07:00`;
}

/**
 * Builds an element. `props` keys: `class`, `text`, `attrs` (setAttribute), `data` (dataset),
 * `on<Event>` handlers, and anything else as a DOM property (e.g. `type`, `value`, `disabled`).
 * Children may be nodes, strings (added as text), arrays, or null/false (skipped).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = String(value);
    else if (key === 'attrs') for (const [a, v] of Object.entries(value)) {
      if (v !== undefined && v !== null && v !== false) node.setAttribute(a, v === true ? '' : String(v));
    }
    else if (key === 'data') Object.assign(node.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2).toLowerCase(), value);
    else node[key] = value;
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces all children of `node`. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/**
 * A table in its scrolling wrapper. Each of `headers` is a column name, or `{label, num, hidden}`
 * (`num`: a column of figures, right-aligned; `hidden`: the name is for screen readers only, e.g.
 * "Actions"). `body` is the rows, or a `<tbody>` the caller keeps in order to change it later.
 */
export function dataTable(id, headers, body) {
  const th = (h) => {
    const { label, num, hidden } = typeof h === 'object' && h ? h : { label: h };
    return el('th', { scope: 'col', class: num ? 'num' : null }, hidden ? el('span', { class: 'sr-only', text: label }) : label);
  };
  return el('div', { class: 'table-wrap' },
    el('table', { id },
      el('thead', {}, el('tr', {}, headers.map(th))),
      body instanceof HTMLTableSectionElement ? body : el('tbody', {}, body)));
}

/** A query-string parameter of the current page. */
export function param(name) {
  return new URLSearchParams(window.location.search).get(name);
}

/** A UUID as the API writes them (guards links built from the query string). */
export function isUuid(s) {
  return typeof s === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s);
}

/** A status line under a form or action: `kind` is '', 'ok' or 'error'. */
export function say(target, message, kind = '') {
  if (!target) return;
  target.textContent = message || '';
  target.classList.toggle('is-error', kind === 'error');
  target.classList.toggle('is-ok', kind === 'ok');
  target.hidden = !message;
}

/** A waiting-time range in seconds ({min, max}) as words: "about 2–3 min", "less than a minute". */
export function etaText(eta) {
  const min = Math.max(0, Number(eta && eta.min) || 0);
  const max = Math.max(min, Number(eta && eta.max) || 0);
  if (max <= 0) return 'any moment now';
  if (max < 60) return 'less than a minute';
  if (max >= 90 * 60) {
    const lo = Math.max(1, Math.floor(min / 3600));
    const hi = Math.max(lo, Math.ceil(max / 3600));
    return lo === hi ? `about ${hi} hour${hi === 1 ? '' : 's'}` : `about ${lo}–${hi} hours`;
  }
  const lo = Math.max(1, Math.floor(min / 60));
  const hi = Math.max(lo, Math.ceil(max / 60));
  return lo === hi ? `about ${hi} min` : `about ${lo}–${hi} min`;
}

/** Milliseconds left as a clock: "9:05", or "1:02:03" from an hour up. Never negative. */
export function clock(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}
