// Admin console: events (drafts included), schedules, ticket categories, merchandise, publishing,
// waiting-room settings, users and roles, payments (those under review, accepted or refunded; payment
// notifications that failed, with replay), and the audit log. Access is decided by the server: the page
// asks for the admin event list and shows a clear message on 401 or 403.

import { del, describeError, get, getSession, onSessionChange, patch, post, put } from '../api.js';
import { wireSignIn } from '../auth.js';
import { onAction, onSubmit, optionalWhole, text, whole } from '../forms.js';
import { renderChrome } from '../layout.js';
import { statusPillClass, statusText } from '../orders.js';
import { count, dataTable, el, etaText, fill, formatWIB, fromWibInput, isUuid, rupiah, say, timeWIB, toWibInput } from '../util.js';

renderChrome({ active: 'admin' });

const root = document.getElementById('admin');
let booted = false;
let flash = null; // a message for the next view (e.g. "created" after switching to the new event)

// ---- small builders ------------------------------------------------------------------------------

function msg(id) {
  return el('p', { class: 'form-msg', id, attrs: { role: 'status' }, hidden: true });
}

function field(label, control, { hint, span } = {}) {
  return el('div', { class: `field${span ? ' span-all' : ''}` },
    el('label', { attrs: { for: control.id }, text: label }),
    control,
    hint ? el('span', { class: 'hint', text: hint }) : null);
}

function input(id, name, { type = 'text', value, required, min, max, placeholder, inputMode } = {}) {
  return el('input', {
    id, name, type, required, inputMode,
    // defaultValue (the value attribute) so that form.reset() goes back to it, not to empty.
    defaultValue: value ?? '',
    attrs: { min, max, placeholder, autocomplete: 'off' },
  });
}

/**
 * The fields of an event's form, with ids `<prefix>-…`: empty, with hints on the optional ones, for a new
 * event; filled in from `ev` for an existing one.
 */
function eventFields(prefix, ev) {
  const hint = (text) => (ev ? {} : { hint: text });
  const at = (id, key, required) => input(`${prefix}-${id}`, key, { type: 'datetime-local', required, value: ev ? toWibInput(ev[key]) : '' });
  return [
    field('Name', input(`${prefix}-name`, 'name', { required: true, value: ev?.name })),
    field('Venue', input(`${prefix}-venue`, 'venue', { required: true, value: ev?.venue })),
    field('Starts (WIB)', at('starts', 'starts_at', true)),
    field('Ends (WIB)', at('ends', 'ends_at'), hint('Optional')),
    field('Sale opens (WIB)', at('sale-opens', 'sale_opens_at'), hint('Optional; empty means open once published')),
    field('Sale closes (WIB)', at('sale-closes', 'sale_closes_at'), hint('Optional')),
    field('Max tickets per buyer', input(`${prefix}-max`, 'max_tickets_per_buyer',
      { type: 'number', min: 1, max: 100, value: ev ? String(ev.max_tickets_per_buyer) : '6' })),
    field('Description', el('textarea', { id: `${prefix}-description`, name: 'description', rows: 3, defaultValue: ev?.description }), { span: true }),
  ];
}

/**
 * An event form's values as the API takes them. For a new event (`create`) the optional fields left
 * empty are left out; an edit sends them as null (cleared) and needs the ticket limit.
 */
function eventBody(data, { create }) {
  const body = {
    name: text(data, 'name'),
    venue: text(data, 'venue'),
    starts_at: when(data, 'starts_at', 'Start'),
    ends_at: when(data, 'ends_at', 'End'),
    sale_opens_at: when(data, 'sale_opens_at', 'Sale opening'),
    sale_closes_at: when(data, 'sale_closes_at', 'Sale closing'),
    max_tickets_per_buyer: (create ? optionalWhole : whole)(data, 'max_tickets_per_buyer', 'Max tickets per buyer'),
    description: text(data, 'description'),
  };
  if (!body.starts_at) throw new Error('Start date and time is required.');
  return create ? Object.fromEntries(Object.entries(body).filter(([, v]) => v !== null && v !== undefined)) : body;
}

// ---- ticket categories and merchandise: what they share -------------------------------------------

const STOCK_COLUMNS = ['Sold', 'Held', 'Left', 'Max/order'].map((label) => ({ label, num: true }));

/**
 * A ticket category's or merchandise item's row: name (and description), `cells`, then the STOCK_COLUMNS
 * and `form`. `data` goes on the row beside the item's name.
 */
function stockRow(item, data, cells, form) {
  return el('tr', { data: { ...data, name: item.name } },
    el('td', {}, el('strong', { text: item.name }), item.description ? el('div', { class: 'muted small', text: item.description }) : null),
    cells,
    el('td', { class: 'num', text: count(item.sold) }),
    el('td', { class: 'num', text: count(item.held) }),
    el('td', { class: 'num', text: count(item.remaining) }),
    el('td', { class: 'num', text: String(item.max_per_order) }),
    el('td', {}, form));
}

/**
 * The in-row form that changes an item's price and its `amount` ('quota' of a ticket category, 'stock'
 * of merchandise): PATCH `url`, then `reload()` and say what was saved in `status`.
 */
function priceForm(item, { prefix, amount, url, reload, status }) {
  const label = amount[0].toUpperCase() + amount.slice(1);
  const priceId = `${prefix}-price-${item.id}`;
  const amountId = `${prefix}-${amount}-${item.id}`;
  const form = el('form', { class: 'row-form', attrs: { 'aria-label': `Edit ${item.name}` } },
    el('label', { class: 'sr-only', attrs: { for: priceId }, text: `Price of ${item.name}` }),
    input(priceId, 'price', { type: 'number', min: 0, value: String(item.price) }),
    el('label', { class: 'sr-only', attrs: { for: amountId }, text: `${label} of ${item.name}` }),
    input(amountId, amount, { type: 'number', min: 0, value: String(item[amount]) }),
    el('button', { type: 'submit', class: 'btn btn-small btn-secondary', text: 'Save' }));
  onSubmit(form, async (data) => {
    const updated = await patch(url, { price: whole(data, 'price', 'Price'), [amount]: whole(data, amount, label) });
    await reload();
    return `Saved ${updated.name}: ${rupiah(updated.price)}, ${amount} ${count(updated[amount])}.`;
  }, { status });
  return form;
}

function statusPill(status) {
  const cls = status === 'published' ? 'pill' : status === 'draft' ? 'pill pill-draft' : 'pill pill-out';
  return el('span', { class: `${cls} status-pill`, text: status });
}

function emptyRow(cols, message) {
  return el('tr', {}, el('td', { attrs: { colspan: cols }, class: 'muted', text: message }));
}

/** Optional WIB datetime field as an RFC 3339 string, or null when empty. */
function when(data, name, label) {
  try {
    return fromWibInput(String(data.get(name) ?? ''));
  } catch {
    throw new Error(`${label} is not a valid date and time.`);
  }
}

// ---- access --------------------------------------------------------------------------------------

function showSignIn(reason) {
  const status = msg('admin-login-msg');
  const form = el('form', { id: 'admin-login-form', class: 'form', attrs: { novalidate: true } },
    field('Email', input('admin-email', 'email', { type: 'email', required: true })),
    field('Password', input('admin-password', 'password', { type: 'password', required: true })),
    status,
    el('button', { type: 'submit', class: 'btn', text: 'Sign in' }));
  form.querySelector('#admin-email').autocomplete = 'username';
  form.querySelector('#admin-password').autocomplete = 'current-password';
  fill(root, el('section', { class: 'card narrow', attrs: { 'aria-labelledby': 'admin-signin-title' } },
    el('h2', { id: 'admin-signin-title', text: 'Sign in to the admin console' }),
    el('p', { class: 'muted', text: reason || 'Only administrators can use the console. Sign in with an admin account.' }),
    form));
  wireSignIn(form, status, () => boot());
}

function showForbidden(user) {
  fill(root, el('section', { class: 'notice notice-error', id: 'admin-denied', attrs: { role: 'alert' } },
    el('h2', { text: 'Not allowed' }),
    el('p', {}, 'The admin console is for administrators only. You are signed in as ',
      el('strong', { text: user ? `${user.name} (${user.email})` : 'a user' }),
      user && user.role ? `, whose role is ${user.role}.` : '.'),
    el('p', { text: 'If an administrator has just given you the admin role, sign out and sign in again so it takes effect.' }),
    el('p', { class: 'actions' },
      el('a', { class: 'btn btn-small btn-secondary', href: 'index.html', text: 'Back to the events' }))));
}

async function boot() {
  const session = getSession();
  if (!session) {
    showSignIn();
    return;
  }
  fill(root, el('p', { class: 'muted', text: 'Checking your access…' }));
  try {
    const events = await get('/api/admin/events?limit=100');
    startConsole(events);
  } catch (err) {
    if (err.status === 403) showForbidden(session.user);
    else if (err.status === 401) showSignIn('Your session has ended. Please sign in again.');
    else {
      fill(root, el('div', { class: 'notice notice-error', attrs: { role: 'alert' } },
        el('p', { text: `Could not open the console. ${describeError(err)}` }),
        el('button', { type: 'button', class: 'btn btn-small btn-secondary', text: 'Try again', onClick: boot })));
    }
  }
}

// ---- console shell and routing -------------------------------------------------------------------

let view; // the element the current tab draws into
let liveGeneration = 0;
let tabs;
let firstEvents = null;

function startConsole(events) {
  firstEvents = events;
  tabs = el('nav', { class: 'admin-tabs', attrs: { 'aria-label': 'Admin sections' } },
    el('a', { href: '#events', data: { tab: 'events' }, text: 'Events' }),
    el('a', { href: '#users', data: { tab: 'users' }, text: 'Users' }),
    el('a', { href: '#payments', data: { tab: 'payments' }, text: 'Payments' }),
    el('a', { href: '#audit', data: { tab: 'audit' }, text: 'Audit log' }),
    el('a', { href: 'checkin.html', class: 'admin-tab-page', text: 'Check-in' }));
  view = el('div', { id: 'admin-view' });
  fill(root, tabs, view);
  if (!booted) {
    booted = true;
    window.addEventListener('hashchange', route);
  }
  route();
}

function parseHash() {
  const raw = window.location.hash.replace(/^#/, '');
  const [path, query = ''] = raw.split('?');
  return { parts: path.split('/').filter(Boolean), query: new URLSearchParams(query) };
}

function route() {
  liveGeneration += 1; // stops the live waiting-room panel of a view being left
  if (!view) return;
  const { parts, query } = parseHash();
  const tab = ['users', 'payments', 'audit'].includes(parts[0]) ? parts[0] : 'events';
  for (const a of tabs.querySelectorAll('a')) {
    if (a.dataset.tab === tab) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (tab === 'users') usersView();
  else if (tab === 'payments') paymentsView();
  else if (tab === 'audit') auditView(query);
  else if (parts[0] === 'event' && isUuid(parts[1])) eventView(parts[1]);
  else eventsView();
}

// ---- events list and creation --------------------------------------------------------------------

function eventRows(events) {
  if (!events.length) return [emptyRow(6, 'No events yet. Create the first one below.')];
  return events.map((ev) => el('tr', { data: { eventId: ev.id } },
    el('td', {}, el('a', { href: `#event/${ev.id}`, text: ev.name })),
    el('td', {}, statusPill(ev.status)),
    el('td', { text: formatWIB(ev.starts_at) }),
    el('td', { text: ev.venue }),
    el('td', { class: 'num', text: ev.from_price == null ? '—' : rupiah(ev.from_price) }),
    el('td', { class: 'num', text: count(ev.tickets_remaining) })));
}

function eventsView() {
  const listStatus = msg('events-msg');
  const body = el('div', {}, el('p', { class: 'muted', text: 'Loading events…' }));
  const draw = (events) => fill(body, dataTable('admin-events', ['Event', 'Status', 'Starts (WIB)', 'Venue', { label: 'From', num: true }, { label: 'Tickets left', num: true }], eventRows(events)));

  const createStatus = msg('create-event-msg');
  const form = el('form', { id: 'create-event-form', class: 'form' },
    el('div', { class: 'form-grid' }, eventFields('ce')),
    createStatus,
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'btn', text: 'Create event' })));

  onSubmit(form, async (data) => {
    const created = await post('/api/admin/events', eventBody(data, { create: true }));
    form.reset();
    flash = `Created “${created.name}” as a draft. Add tickets and merchandise, then publish it.`;
    window.location.hash = `#event/${created.id}`;
    return undefined;
  }, { status: createStatus });

  fill(view,
    el('section', { class: 'card admin-section', attrs: { 'aria-labelledby': 'events-title' } },
      el('h2', { id: 'events-title', text: 'Events' }),
      el('p', { class: 'muted small', text: 'Drafts are only visible here. Open an event to add schedules, tickets and merchandise, then publish it.' }),
      listStatus,
      body),
    el('details', { class: 'card admin-section', id: 'create-event', open: true },
      el('summary', { text: 'Create an event' }),
      form));

  const show = (events) => draw(events);
  if (firstEvents) {
    show(firstEvents);
    firstEvents = null;
  } else {
    get('/api/admin/events?limit=100').then(show, (err) => say(listStatus, describeError(err), 'error'));
  }
}

// ---- one event -----------------------------------------------------------------------------------

function eventView(id) {
  const pageStatus = msg('event-msg');
  fill(view, el('p', { class: 'crumbs' }, el('a', { href: '#events', text: '← All events' })), pageStatus,
    el('p', { class: 'muted', text: 'Loading event…' }));

  let ev = null;
  const headHolder = el('div', {});
  const detailsHolder = el('div', {});
  const schedulesHolder = el('div', {});
  const categoriesHolder = el('div', {});
  const merchHolder = el('div', {});
  const roomHolder = el('div', {});
  const scheduleStatus = msg('schedules-msg');
  const categoryStatus = msg('categories-msg');
  const merchStatus = msg('merch-msg');

  const reload = async () => {
    ev = await get(`/api/admin/events/${id}`);
    drawHead();
    drawSchedules();
    drawCategories();
    drawMerch();
    syncScheduleSelect();
  };

  // -- header: name, status, publish toggle, totals
  function drawHead() {
    const cats = ev.ticket_categories || [];
    const sum = (k) => cats.reduce((n, c) => n + (Number(c[k]) || 0), 0);
    const publishBtn = el('button', {
      type: 'button',
      id: 'publish-toggle',
      class: ev.status === 'published' ? 'btn btn-secondary' : 'btn btn-teal',
      text: ev.status === 'published' ? 'Unpublish' : 'Publish',
      disabled: ev.status === 'cancelled',
    });
    const headStatus = msg('publish-msg');
    onAction(publishBtn, async () => {
      const action = ev.status === 'published' ? 'unpublish' : 'publish';
      ev = await post(`/api/admin/events/${id}/${action}`);
      drawHead();
      say(document.getElementById('publish-msg'), action === 'publish' ? 'Published: the event is now on the storefront.' : 'Unpublished: the event is hidden from the storefront.', 'ok');
      return undefined;
    }, { status: headStatus });
    fill(headHolder,
      el('section', { class: 'card admin-section', attrs: { 'aria-labelledby': 'event-name' } },
        el('h2', { id: 'event-name' }, el('span', { text: ev.name }), statusPill(ev.status)),
        el('p', { class: 'muted', text: `${formatWIB(ev.starts_at)} · ${ev.venue}` }),
        el('div', { class: 'stat-row' },
          el('div', { class: 'stat' }, el('b', { text: count(sum('quota')) }), 'ticket quota'),
          el('div', { class: 'stat' }, el('b', { text: count(sum('sold')) }), 'sold'),
          el('div', { class: 'stat' }, el('b', { text: count(sum('held')) }), 'held'),
          el('div', { class: 'stat' }, el('b', { text: count(sum('remaining')) }), 'remaining')),
        el('p', { class: 'actions' },
          publishBtn,
          ev.status === 'published' ? el('a', { class: 'btn btn-secondary', href: `event.html?id=${encodeURIComponent(ev.id)}`, text: 'View on storefront' }) : null,
          el('a', { class: 'btn btn-ghost', href: `#audit?entity=event&entity_id=${ev.id}`, text: 'Audit log of this event' })),
        headStatus));
  }

  // -- editable event fields
  function drawDetails() {
    const status = msg('details-msg');
    const form = el('form', { id: 'event-details-form', class: 'form' },
      el('div', { class: 'form-grid' }, eventFields('ed', ev)),
      status,
      el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'btn', text: 'Save details' })));
    onSubmit(form, async (data) => {
      ev = await patch(`/api/admin/events/${id}`, eventBody(data, { create: false }));
      drawHead();
      return 'Event details saved.';
    }, { status });
    fill(detailsHolder, el('details', { class: 'card admin-section' }, el('summary', { text: 'Event details' }), form));
  }

  // -- schedules
  function drawSchedules() {
    const rows = (ev.schedules || []).map((s) => {
      const remove = el('button', { type: 'button', class: 'btn btn-danger btn-small', text: 'Delete', attrs: { 'aria-label': `Delete schedule ${s.label || formatWIB(s.starts_at)}` } });
      onAction(remove, async () => {
        await del(`/api/admin/schedules/${s.id}`);
        await reload();
        return undefined;
      }, { status: scheduleStatus });
      return el('tr', {},
        el('td', { text: s.label || '—' }),
        el('td', { text: formatWIB(s.starts_at) }),
        el('td', { text: formatWIB(s.ends_at) }),
        el('td', { class: 'num' }, remove));
    });
    fill(schedulesHolder, dataTable('admin-schedules', ['Label', 'Starts (WIB)', 'Ends (WIB)', ''], rows.length ? rows : [emptyRow(4, 'No schedules yet.')]));
  }

  const scheduleForm = el('form', { id: 'add-schedule-form', class: 'form' },
    el('div', { class: 'form-grid' },
      field('Label', input('sc-label', 'label', { placeholder: 'Day 1 — Friday' }), { hint: 'Optional' }),
      field('Starts (WIB)', input('sc-starts', 'starts_at', { type: 'datetime-local', required: true })),
      field('Ends (WIB)', input('sc-ends', 'ends_at', { type: 'datetime-local', required: true }))),
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'btn btn-secondary', text: 'Add schedule' })));
  onSubmit(scheduleForm, async (data) => {
    const body = { label: text(data, 'label'), starts_at: when(data, 'starts_at', 'Start'), ends_at: when(data, 'ends_at', 'End') };
    if (!body.starts_at || !body.ends_at) throw new Error('A schedule needs a start and an end.');
    const created = await post(`/api/admin/events/${id}/schedules`, body);
    scheduleForm.reset();
    await reload();
    return `Added schedule ${created.label || formatWIB(created.starts_at)}.`;
  }, { status: scheduleStatus });

  // -- ticket categories
  const scheduleSelect = el('select', { id: 'tc-schedule', name: 'schedule_id' });
  function syncScheduleSelect() {
    const current = scheduleSelect.value;
    fill(scheduleSelect, el('option', { value: '', text: 'All schedules' }),
      (ev.schedules || []).map((s) => el('option', { value: s.id, text: s.label || formatWIB(s.starts_at) })));
    scheduleSelect.value = [...scheduleSelect.options].some((o) => o.value === current) ? current : '';
  }

  function drawCategories() {
    const schedules = new Map((ev.schedules || []).map((s) => [s.id, s]));
    const rows = (ev.ticket_categories || []).map((c) => {
      const f = priceForm(c, { prefix: 'tc', amount: 'quota', url: `/api/admin/ticket-categories/${c.id}`, reload, status: categoryStatus });
      const schedule = c.schedule_id ? schedules.get(c.schedule_id) : null;
      return stockRow(c, { categoryId: c.id }, [el('td', { text: schedule ? schedule.label || formatWIB(schedule.starts_at) : 'All' })], f);
    });
    fill(categoriesHolder, dataTable('admin-categories', ['Category', 'Schedule', ...STOCK_COLUMNS, 'Price (Rp) · Quota'],
      rows.length ? rows : [emptyRow(7, 'No ticket categories yet.')]));
  }

  const categoryForm = el('form', { id: 'add-category-form', class: 'form' },
    el('div', { class: 'form-grid' },
      field('Category name', input('tc-name', 'name', { required: true, placeholder: 'Festival' })),
      field('Price (Rp)', input('tc-price', 'price', { type: 'number', min: 0, required: true, placeholder: '150000' })),
      field('Quota', input('tc-quota', 'quota', { type: 'number', min: 0, required: true })),
      field('Max per order', input('tc-max', 'max_per_order', { type: 'number', min: 1, max: 100, required: true, value: '4' })),
      field('Schedule', scheduleSelect),
      field('Sort order', input('tc-sort', 'sort_order', { type: 'number', value: '0' })),
      field('Sale starts (WIB)', input('tc-sale-starts', 'sale_starts_at', { type: 'datetime-local' }), { hint: 'Optional' }),
      field('Sale ends (WIB)', input('tc-sale-ends', 'sale_ends_at', { type: 'datetime-local' }), { hint: 'Optional' }),
      field('Description', input('tc-description', 'description'), { span: true })),
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'btn btn-secondary', text: 'Add ticket category' })));
  onSubmit(categoryForm, async (data) => {
    const body = {
      name: text(data, 'name'),
      price: whole(data, 'price', 'Price'),
      quota: whole(data, 'quota', 'Quota'),
      max_per_order: whole(data, 'max_per_order', 'Max per order'),
      description: text(data, 'description'),
    };
    const sort = optionalWhole(data, 'sort_order', 'Sort order');
    if (sort !== undefined) body.sort_order = sort;
    const schedule = text(data, 'schedule_id');
    if (schedule) body.schedule_id = schedule;
    const starts = when(data, 'sale_starts_at', 'Sale start');
    const ends = when(data, 'sale_ends_at', 'Sale end');
    if (starts) body.sale_starts_at = starts;
    if (ends) body.sale_ends_at = ends;
    const created = await post(`/api/admin/events/${id}/ticket-categories`, body);
    categoryForm.reset();
    await reload();
    return `Added ticket category ${created.name} at ${rupiah(created.price)}.`;
  }, { status: categoryStatus });

  // -- merchandise
  function drawMerch() {
    const rows = (ev.merchandise || []).map((m) => {
      const f = priceForm(m, { prefix: 'mc', amount: 'stock', url: `/api/admin/merchandise/${m.id}`, reload, status: merchStatus });
      return stockRow(m, { merchId: m.id }, [], f);
    });
    fill(merchHolder, dataTable('admin-merch', ['Item', ...STOCK_COLUMNS, 'Price (Rp) · Stock'],
      rows.length ? rows : [emptyRow(6, 'No merchandise for this event yet.')]));
  }

  const merchForm = el('form', { id: 'add-merch-form', class: 'form' },
    el('div', { class: 'form-grid' },
      field('Item name', input('mc-name', 'name', { required: true, placeholder: 'Official T-shirt' })),
      field('Price (Rp)', input('mc-price', 'price', { type: 'number', min: 0, required: true })),
      field('Stock', input('mc-stock', 'stock', { type: 'number', min: 0, required: true })),
      field('Max per order', input('mc-max', 'max_per_order', { type: 'number', min: 1, max: 100, value: '5' })),
      field('Description', input('mc-description', 'description'), { span: true })),
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'btn btn-secondary', text: 'Add merchandise' })));
  onSubmit(merchForm, async (data) => {
    const body = {
      event_id: id,
      name: text(data, 'name'),
      price: whole(data, 'price', 'Price'),
      stock: whole(data, 'stock', 'Stock'),
      description: text(data, 'description'),
    };
    const max = optionalWhole(data, 'max_per_order', 'Max per order');
    if (max !== undefined) body.max_per_order = max;
    const created = await post('/api/admin/merchandise', body);
    merchForm.reset();
    await reload();
    return `Added ${created.name} at ${rupiah(created.price)}.`;
  }, { status: merchStatus });

  // -- waiting room
  function drawRoom(settings) {
    const status = msg('room-msg');
    const num = (idName, name, label, hint, min, max) =>
      field(label, input(idName, name, { type: 'number', min, max, required: true, value: String(settings[name]) }), { hint });
    const paused = el('input', { type: 'checkbox', id: 'wr-paused', name: 'paused', checked: !!settings.paused });
    const updated = el('p', { class: 'muted small', text: `Last changed ${formatWIB(settings.updated_at)}.` });
    const form = el('form', { id: 'waiting-room-form', class: 'form' },
      el('div', { class: 'form-grid' },
        num('wr-rate', 'admission_rate_per_sec', 'Admissions per second', 'Visitors let in from the head of the queue each second (1–100000).', 1, 100000),
        num('wr-active', 'max_active', 'Max active buyers', 'Admitted buyers allowed to shop at once.', 1, 10000000),
        num('wr-ttl', 'token_ttl_secs', 'Admission token lifetime (s)', 'How long an admitted buyer has to check out (10–86400).', 10, 86400),
        num('wr-grace', 'presence_grace_secs', 'Presence grace (s)', 'A visitor unseen this long is skipped at admission (5–3600).', 5, 3600)),
      el('label', { class: 'check', attrs: { for: 'wr-paused' } }, paused, 'Pause admissions (the queue keeps its order)'),
      updated,
      status,
      el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'btn btn-secondary', text: 'Save waiting-room settings' })));
    onSubmit(form, async (data) => {
      const saved = await put(`/api/admin/events/${id}/waiting-room`, {
        admission_rate_per_sec: whole(data, 'admission_rate_per_sec', 'Admissions per second'),
        max_active: whole(data, 'max_active', 'Max active buyers'),
        token_ttl_secs: whole(data, 'token_ttl_secs', 'Token lifetime'),
        presence_grace_secs: whole(data, 'presence_grace_secs', 'Presence grace'),
        paused: data.get('paused') === 'on',
      });
      updated.textContent = `Last changed ${formatWIB(saved.updated_at)}.`;
      live.refresh();
      return saved.paused ? 'Saved. Admissions are paused.' : 'Saved. Admissions are running.';
    }, { status });
    const previewForm = () => live.preview(Number(form.querySelector('#wr-rate').value) || null,
      Number(form.querySelector('#wr-active').value) || null);
    form.querySelector('#wr-rate').addEventListener('input', previewForm);
    form.querySelector('#wr-active').addEventListener('input', previewForm);
    fill(roomHolder, form);
  }

  // The live panel changes settings too: keep the settings form showing what is in force.
  const live = roomLive(id, (saved) => {
    const set = (inputId, value) => {
      const node = document.getElementById(inputId);
      if (node) {
        node.value = String(value);
        node.defaultValue = String(value);
      }
    };
    set('wr-rate', saved.admission_rate_per_sec);
    const box = document.getElementById('wr-paused');
    if (box) {
      box.checked = !!saved.paused;
      box.defaultChecked = !!saved.paused;
    }
  });

  const sectionOf = (title, idName, ...children) =>
    el('section', { class: 'card admin-section', attrs: { 'aria-labelledby': idName } }, el('h2', { id: idName, text: title }), ...children);

  (async () => {
    try {
      const [detail, room] = await Promise.all([get(`/api/admin/events/${id}`), get(`/api/admin/events/${id}/waiting-room`)]);
      ev = detail;
      drawHead();
      drawDetails();
      drawSchedules();
      syncScheduleSelect();
      drawCategories();
      drawMerch();
      drawRoom(room);
      fill(view,
        el('p', { class: 'crumbs' }, el('a', { href: '#events', text: '← All events' })),
        pageStatus,
        headHolder,
        sectionOf('Live waiting room', 'room-live-title', live.node),
        detailsHolder,
        sectionOf('Schedules', 'schedules-title', schedulesHolder, scheduleStatus,
          el('h3', { text: 'Add a schedule' }), scheduleForm),
        sectionOf('Ticket categories', 'categories-title', categoriesHolder, categoryStatus,
          el('h3', { text: 'Add a ticket category' }), categoryForm),
        sectionOf('Merchandise', 'merch-title', merchHolder, merchStatus,
          el('h3', { text: 'Add merchandise' }), merchForm),
        sectionOf('Waiting-room settings', 'room-title', roomHolder));
      live.start();
      if (flash) say(pageStatus, flash, 'ok');
      flash = null;
    } catch (err) {
      say(pageStatus, err.status === 404 ? 'This event does not exist (it may have been deleted).' : describeError(err), 'error');
      view.lastElementChild?.remove();
    }
  })();
}

// ---- live waiting room ---------------------------------------------------------------------------

const STATS_EVERY_MS = 2000;

/**
 * The live panel of an event's waiting room: GET …/waiting-room/stats every 2 s while the event's view is
 * open, with pause/resume and the admission rate. `onSaved(settings)` runs after a change is saved.
 */
function roomLive(id, onSaved) {
  const generation = () => liveGeneration;
  let mine = null;
  let timer = null;
  let last = null;

  const figure = (key, label) => el('div', { class: 'stat', data: { stat: key } }, el('b', { text: '—' }), label);
  const figures = {
    waiting: figure('waiting', 'waiting'),
    prequeue: figure('prequeue', 'in the pre-queue'),
    active: figure('active', 'active buyers'),
    admitted_total: figure('admitted_total', 'admitted so far'),
    left_total: figure('left_total', 'left the queue'),
    rate: figure('rate', 'admissions / s'),
    drain: figure('drain', 'to drain the queue'),
    connections: figure('connections', 'live connections here'),
  };
  const state = el('span', { class: 'pill', id: 'room-state', text: 'Loading…' });
  const updated = el('p', { class: 'muted small', id: 'room-updated', text: '' });
  const status = msg('room-live-msg');

  const toggle = el('button', { type: 'button', id: 'room-pause-toggle', class: 'btn btn-secondary', text: 'Pause admissions', disabled: true });
  const rateInput = input('room-rate', 'admission_rate_per_sec', { type: 'number', min: 1, max: 100000, required: true });
  const rateForm = el('form', { id: 'room-rate-form', class: 'row-form', attrs: { 'aria-label': 'Admission rate' } },
    el('label', { attrs: { for: 'room-rate' }, text: 'Admission rate (per second)' }),
    rateInput,
    el('button', { type: 'submit', class: 'btn btn-small btn-secondary', text: 'Set rate' }));

  // Before a change: what it will do (GET …/waiting-room/preview). After a rate is set: the admissions
  // counted since, against what the preview said.
  const preview = el('p', { class: 'small', id: 'room-preview', attrs: { 'aria-live': 'polite' }, text: '' });
  const chart = el('div', { class: 'room-chart', id: 'room-chart', hidden: true });
  let previewTimer = null;
  let applied = null; // { at, admitted, rate, waiting, points: [[secs, admitted since]] }
  const showPreview = (rate, cap) => {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(async () => {
      const q = new URLSearchParams();
      if (rate) q.set('admission_rate_per_sec', String(rate));
      if (cap) q.set('max_active', String(cap));
      try {
        const p = await get(`/api/admin/events/${id}/waiting-room/preview?${q}`);
        if (mine !== generation()) return;
        const bind = p.max_active_may_bind
          ? ` Max active ${count(p.max_active)} may hold admission near ${p.max_active_sustains_per_sec.toFixed(1)}/s if buyers keep their slots.`
          : '';
        preview.textContent = `Preview: ${p.summary}.${bind}`;
      } catch (err) {
        preview.textContent = `Preview unavailable: ${describeError(err)}`;
      }
    }, 250);
  };
  const drawChart = () => {
    if (!applied || applied.points.length < 2) return;
    const W = 320, H = 120, P = 24;
    const span = Math.max(10, applied.points[applied.points.length - 1][0]);
    const expected = (t) => Math.min(applied.waiting, applied.rate * t);
    const top = Math.max(1, expected(span), ...applied.points.map(([, n]) => n));
    const x = (t) => P + ((W - 2 * P) * t) / span;
    const y = (n) => H - P - ((H - 2 * P) * n) / top;
    const line = (pts) => pts.map(([t, n]) => `${x(t).toFixed(1)},${y(n).toFixed(1)}`).join(' ');
    const predicted = [0, span / 4, span / 2, (3 * span) / 4, span].map((t) => [t, expected(t)]);
    const actual = applied.points.at(-1)[1];
    chart.hidden = false;
    chart.innerHTML = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="Admitted since the change: ${actual} actual, ${Math.round(expected(span))} previewed">
      <polyline points="${line(predicted)}" fill="none" stroke="#9aa0a6" stroke-dasharray="4 3" stroke-width="2"/>
      <polyline points="${line(applied.points)}" fill="none" stroke="#0b7a75" stroke-width="2"/>
      <text x="${P}" y="14" font-size="11">admitted since the change: ${actual} (preview ${Math.round(expected(span))})</text>
      <text x="${W - P}" y="${H - 6}" font-size="10" text-anchor="end">${Math.round(span)} s</text></svg>`;
  };
  rateInput.addEventListener('input', () => showPreview(Number(rateInput.value) || null, null));

  const show = (s) => {
    if (applied) {
      applied.points.push([(Date.now() - applied.at) / 1000, s.admitted_total - applied.admitted]);
      drawChart();
    }
    last = s;
    const setFigure = (key, value) => {
      const b = figures[key].querySelector('b');
      if (b.textContent !== value) b.textContent = value;
    };
    setFigure('waiting', count(s.waiting));
    setFigure('prequeue', count(s.prequeue));
    setFigure('active', `${count(s.active)} / ${count(s.max_active)}`);
    setFigure('admitted_total', count(s.admitted_total));
    setFigure('left_total', count(s.left_total));
    setFigure('rate', count(s.admission_rate_per_sec));
    setFigure('drain', s.estimated_drain_secs > 0 ? etaText({ min: s.estimated_drain_secs, max: s.estimated_drain_secs }) : 'empty');
    setFigure('connections', count(s.push_connections_here));
    figures.rate.classList.toggle('is-paused', !!s.paused);
    state.textContent = s.paused ? 'Admissions paused' : 'Admitting';
    state.className = s.paused ? 'pill pill-warn' : 'pill';
    toggle.textContent = s.paused ? 'Resume admissions' : 'Pause admissions';
    toggle.className = s.paused ? 'btn btn-teal' : 'btn btn-secondary';
    if (!toggle.hasAttribute('aria-busy')) toggle.disabled = false;
    if (document.activeElement !== rateInput && !rateInput.matches(':focus')) {
      rateInput.value = String(s.admission_rate_per_sec);
    }
    updated.textContent = `Updated ${timeWIB(new Date().toISOString())}:${String(new Date().getSeconds()).padStart(2, '0')} WIB · every 2 s`;
  };

  const refresh = async () => {
    clearTimeout(timer);
    try {
      const s = await get(`/api/admin/events/${id}/waiting-room/stats`);
      if (mine !== generation()) return;
      show(s);
      if (status.dataset.stale) {
        delete status.dataset.stale;
        say(status, '');
      }
    } catch (err) {
      if (mine !== generation()) return;
      status.dataset.stale = '1';
      say(status, `Could not refresh the figures: ${describeError(err)}`, 'error');
    }
    if (mine === generation()) timer = setTimeout(refresh, STATS_EVERY_MS);
  };

  const save = async (patchBody, done) => {
    const saved = await put(`/api/admin/events/${id}/waiting-room`, patchBody);
    onSaved(saved);
    if (last && patchBody.admission_rate_per_sec) {
      applied = { at: Date.now(), admitted: last.admitted_total, rate: saved.admission_rate_per_sec,
        waiting: last.waiting + last.prequeue, points: [[0, 0]] };
    }
    if (last) show({ ...last, paused: saved.paused, admission_rate_per_sec: saved.admission_rate_per_sec });
    refresh();
    return done(saved);
  };

  onAction(toggle, () => save({ paused: !(last && last.paused) },
    (s) => (s.paused ? 'Admissions paused. Visitors keep their places; nobody is let in.' : 'Admissions resumed.')), { status });
  onSubmit(rateForm, async (data) => {
    const rate = whole(data, 'admission_rate_per_sec', 'Admission rate');
    return save({ admission_rate_per_sec: rate }, (s) => `Admission rate set to ${count(s.admission_rate_per_sec)} per second.`);
  }, { status });

  const node = el('div', { class: 'room-live', id: 'room-live' },
    el('p', {}, state, ' ', el('span', { class: 'muted small', text: 'Figures for this event, refreshed every 2 seconds.' })),
    el('div', { class: 'stat-row', id: 'room-stats' }, Object.values(figures)),
    el('div', { class: 'room-controls' }, toggle, rateForm),
    preview,
    chart,
    status,
    updated);

  return {
    node,
    start() {
      mine = generation();
      refresh();
      showPreview(null, null);
    },
    preview: showPreview,
    refresh() {
      if (mine !== null && mine === generation()) refresh();
    },
  };
}

// ---- users ---------------------------------------------------------------------------------------

const PAGE = 100;

function usersView() {
  const status = msg('users-msg');
  const tbody = el('tbody', {}, emptyRow(4, 'Loading users…'));
  const more = el('button', { type: 'button', class: 'btn btn-secondary btn-small', text: 'Load more', hidden: true });
  const me = getSession()?.user;
  let offset = 0;

  const row = (u) => {
    const select = el('select', { id: `role-${u.id}`, name: 'role' },
      ['buyer', 'staff', 'admin'].map((r) => el('option', { value: r, text: r, selected: u.role === r })));
    const form = el('form', { class: 'row-form', attrs: { 'aria-label': `Role of ${u.email}` } },
      el('label', { class: 'sr-only', attrs: { for: select.id }, text: `Role of ${u.email}` }),
      select,
      el('button', { type: 'submit', class: 'btn btn-small btn-secondary', text: 'Save role' }));
    let saved = u.role;
    onSubmit(form, async (data) => {
      try {
        const updated = await put(`/api/admin/users/${u.id}/role`, { role: String(data.get('role')) });
        saved = updated.role;
        return `${updated.email} is now ${updated.role}. The change applies at their next sign-in.`;
      } catch (err) {
        select.value = saved; // show the role the user really has
        throw err;
      }
    }, { status });
    return el('tr', { data: { userId: u.id, email: u.email } },
      el('td', {}, el('strong', { text: u.name }), me && me.id === u.id ? el('span', { class: 'muted small', text: ' (you)' }) : null),
      el('td', { text: u.email }),
      el('td', { text: formatWIB(u.created_at) }),
      el('td', {}, form));
  };

  const load = async () => {
    const users = await get(`/api/admin/users?limit=${PAGE}&offset=${offset}`);
    if (offset === 0) tbody.replaceChildren();
    for (const u of users) tbody.append(row(u));
    if (offset === 0 && users.length === 0) tbody.append(emptyRow(4, 'No users.'));
    offset += users.length;
    more.hidden = users.length < PAGE;
  };
  onAction(more, load, { status });

  fill(view, el('section', { class: 'card admin-section', attrs: { 'aria-labelledby': 'users-title' } },
    el('h2', { id: 'users-title', text: 'Users' }),
    el('p', { class: 'muted small', text: 'Give staff the staff role for gate check-in. A role change applies when the user next signs in.' }),
    status,
    dataTable('admin-users', ['Name', 'Email', 'Joined (WIB)', 'Role'], tbody),
    el('p', { class: 'actions' }, more)));
  load().catch((err) => say(status, describeError(err), 'error'));
}

// ---- payments ------------------------------------------------------------------------------------

/**
 * A section of the Payments tab: `title`, `intro`, a status line (`#<name>-msg`), a table of what `url`
 * lists and a reload button under it. `rowsOf(item, { drop, status })` makes an item's row or rows;
 * `drop(rows)` takes them off the table again, with the focus on the next (or else the previous) item's
 * `focusSelector` button, or on the reload button when none is left. `itemSelector` finds the rows that
 * stand for an item.
 */
function paymentsSection({ name, title, intro, tableId, columns, reload, url, rowsOf, itemSelector, focusSelector, emptyText, failedText }) {
  const status = msg(`${name}-msg`);
  const tbody = el('tbody', {}, emptyRow(columns.length, 'Loading…'));
  const reloadButton = el('button', { type: 'button', id: reload.id, class: 'btn btn-secondary btn-small', text: reload.text });
  const empty = () => emptyRow(columns.length, emptyText);

  const drop = (rows) => {
    const next = rows[rows.length - 1].nextElementSibling || rows[0].previousElementSibling;
    rows.forEach((r) => r.remove());
    if (!tbody.querySelector(itemSelector)) tbody.append(empty());
    const target = next && next.querySelector(focusSelector);
    (target || reloadButton).focus();
  };

  const load = async () => {
    const items = await get(url);
    fill(tbody, items.length ? items.map((item) => rowsOf(item, { drop, status })) : empty());
    return undefined;
  };
  onAction(reloadButton, load, { status });

  const node = el('section', { class: 'card admin-section', attrs: { 'aria-labelledby': `${name}-title` } },
    el('h2', { id: `${name}-title`, text: title }),
    el('p', { class: 'muted small', text: intro }),
    status,
    dataTable(tableId, columns, tbody),
    el('p', { class: 'actions' }, reloadButton));
  load().catch((err) => {
    fill(tbody, emptyRow(columns.length, failedText));
    say(status, describeError(err), 'error');
  });
  return node;
}

/**
 * A payment whose Midtrans notification reported another amount than was charged: neither paid nor
 * released, the order keeps its hold until an operator accepts or refunds (or the workers refund it at
 * the review deadline).
 */
function reviewRow(p, { drop, status }) {
  const order = p.midtrans_order_id;
  const amount = rupiah(p.gross_amount);
  // Midtrans sends amounts as decimal strings ("150000.00").
  const reportedValue = Number.parseFloat(p.reported_gross_amount);
  const reported = Number.isFinite(reportedValue) ? rupiah(Math.round(reportedValue)) : '—';
  const accept = el('button', { type: 'button', class: 'btn btn-small btn-teal review-accept', text: 'Accept' });
  const refund = el('button', { type: 'button', class: 'btn btn-small btn-danger review-refund', text: 'Refund' });
  const tr = el('tr', { data: { paymentId: p.payment_id } },
    el('td', {},
      el('div', { class: 'mono review-order', text: order }),
      el('div', { class: 'muted small review-buyer', text: p.buyer_email })),
    el('td', { class: 'num' },
      el('div', { class: 'review-charged', text: amount }),
      el('div', { class: 'muted small review-reported', text: `Midtrans: ${reported}` })),
    el('td', {}, el('span', { class: `${statusPillClass(p.order_status)} review-order-status`, text: statusText(p.order_status) })),
    el('td', { text: formatWIB(p.review_started_at || p.updated_at) }),
    el('td', {}, el('div', { class: 'actions' }, accept, refund)));

  // One decision at a time per payment: onAction keeps the clicked button from a double submit, and the
  // other one is disabled until the answer is in.
  const decide = (decision, other, question, done) => async () => {
    if (!window.confirm(question)) return undefined;
    other.disabled = true;
    try {
      const resolved = await post(`/api/admin/payments/${encodeURIComponent(p.payment_id)}/review`, { decision });
      drop([tr]);
      return done(resolved);
    } catch (err) {
      if (err.status === 409 && err.code === 'not_under_review') {
        drop([tr]);
        return `The payment for ${order} was already resolved (by someone else, or refunded at its deadline); it is off the list.`;
      }
      if (err.status === 409 && err.code === 'items_gone') {
        throw new Error(`The payment for ${order} cannot be accepted: the order's hold ended and its items are no longer available (or the buyer's limit is reached). Refund it instead.`);
      }
      if (err.status === 409 && err.code === 'order_closed') {
        throw new Error(`The payment for ${order} cannot be accepted: ${err.message.replace(/\.$/, '')}.`);
      }
      throw err;
    } finally {
      other.disabled = false;
    }
  };

  onAction(accept, decide('accept', refund,
    `Accept the payment of ${amount} for ${order}?\n\n`
      + `Midtrans reported ${reported}. The order becomes paid and ${p.buyer_email} gets the tickets. Accept only after checking the amount in the Midtrans dashboard.`,
    (r) => (r.outcome === 'paid_late'
      ? `Accepted: the hold on ${order} had ended but its items were still available, so the order is paid and the tickets are issued.`
      : `Accepted: the order ${order} is paid and the tickets are issued.`)), { status });
  onAction(refund, decide('refund', accept,
    `Refund the payment for ${order}?\n\n`
      + `The order is cancelled, its items go back on sale and the payment of ${amount} is refunded to ${p.buyer_email} through Midtrans.`,
    () => `Refunding: the order ${order} is cancelled, its items are back on sale and the payment is being refunded.`), { status });
  return tr;
}

/** A notification that failed every attempt: its facts, and (hidden until asked for) the notification as Midtrans sent it. */
function letterRows(l, { drop, status }) {
  const order = l.midtrans_order_id || 'unknown order';
  const rawId = `letter-json-${l.id}`;
  const raw = el('tr', { class: 'letter-raw', hidden: true },
    el('td', { attrs: { colspan: 6 } },
      el('pre', { id: rawId, class: 'mono notification-json', text: l.notification ?? '' })));
  const toggle = el('button', {
    type: 'button',
    class: 'btn btn-ghost btn-small letter-toggle',
    text: 'Show notification',
    attrs: { 'aria-expanded': 'false', 'aria-controls': rawId },
  });
  toggle.addEventListener('click', () => {
    const open = raw.hidden;
    raw.hidden = !open;
    toggle.textContent = open ? 'Hide notification' : 'Show notification';
    toggle.setAttribute('aria-expanded', String(open));
  });
  const replay = el('button', { type: 'button', class: 'btn btn-small letter-replay', text: 'Replay' });
  const main = el('tr', { data: { letterId: l.id } },
    el('td', { class: 'mono', text: l.midtrans_order_id || '—' }),
    el('td', { text: l.transaction_status || '—' }),
    el('td', { class: 'num', text: count(l.attempts) }),
    el('td', {}, el('span', { class: 'letter-error', text: l.last_error || '—' })),
    el('td', { text: formatWIB(l.failed_at) }),
    el('td', {}, el('div', { class: 'actions' }, toggle, replay)));
  onAction(replay, async () => {
    const sure = window.confirm(`Replay the ${l.transaction_status ? `“${l.transaction_status}” ` : ''}notification for ${order}?\n\n`
      + 'It goes back on the payment queue and is applied once. Replay it only after the cause of the last error is fixed.');
    if (!sure) return undefined;
    try {
      await post(`/api/admin/webhooks/dead-letters/${encodeURIComponent(l.id)}/replay`);
    } catch (err) {
      if (err.status !== 404) throw err;
      drop([main, raw]);
      return `The notification for ${order} had already been replayed; it is off the list.`;
    }
    drop([main, raw]);
    return `Replayed: the notification for ${order} is queued and will be applied shortly.`;
  }, { status });
  return [main, raw];
}

/** The Payments tab: payments under review first, then the notifications that failed. */
function paymentsView() {
  fill(view,
    paymentsSection({
      name: 'reviews',
      title: 'Payments under review',
      intro: 'Midtrans reported a different amount than was charged for these payments, so they were neither honoured nor released: '
        + 'each order keeps its items until you decide. Accept makes the order paid and issues the tickets; Refund cancels the order, puts its items back on sale and refunds the payment. '
        + 'A review left unresolved for a day is refunded automatically.',
      tableId: 'admin-reviews',
      columns: ['Order and buyer', { label: 'Charged / reported', num: true }, 'Order status', 'Under review since (WIB)', { label: 'Actions', hidden: true }],
      reload: { id: 'reviews-reload', text: 'Reload list' },
      url: '/api/admin/payments?status=needs_review',
      rowsOf: reviewRow,
      itemSelector: 'tr[data-payment-id]',
      focusSelector: '.review-accept',
      emptyText: 'No payments under review.',
      failedText: 'Could not load the payments under review.',
    }),
    paymentsSection({
      name: 'payments',
      title: 'Payment notifications that failed',
      intro: 'Notifications from Midtrans that could not be applied after every retry, oldest first. '
        + 'None of them has changed its order yet. Fix the cause shown as the last error, then replay the notification: it is applied once.',
      tableId: 'admin-dead-letters',
      columns: ['Order', 'Status', { label: 'Attempts', num: true }, 'Last error', 'Failed at (WIB)', { label: 'Actions', hidden: true }],
      reload: { id: 'payments-refresh', text: 'Refresh' },
      url: '/api/admin/webhooks/dead-letters',
      rowsOf: letterRows,
      itemSelector: 'tr[data-letter-id]',
      focusSelector: '.letter-replay',
      emptyText: 'No failed notifications.',
      failedText: 'Could not load the failed notifications.',
    }));
}

// ---- audit log -----------------------------------------------------------------------------------

/** Audit details as "key: value" lines (values as JSON, so strings keep their quotes). */
function detailsText(details) {
  if (!details || typeof details !== 'object' || Array.isArray(details)) return JSON.stringify(details ?? null);
  const lines = Object.entries(details).map(([k, v]) => `${k}: ${JSON.stringify(v)}`);
  return lines.length ? lines.join('\n') : '—';
}

const ENTITIES = ['', 'event', 'schedule', 'ticket_category', 'merchandise', 'user'];

function auditView(query) {
  const status = msg('audit-msg');
  const tbody = el('tbody', {}, emptyRow(6, 'Loading…'));
  const older = el('button', { type: 'button', class: 'btn btn-secondary btn-small', text: 'Load older entries', hidden: true });
  const actors = new Map();
  let filters = { entity: query.get('entity') || '', entity_id: query.get('entity_id') || '' };
  let before = null;

  const entitySelect = el('select', { id: 'audit-entity', name: 'entity' },
    ENTITIES.map((e) => el('option', { value: e, text: e || 'Everything', selected: e === filters.entity })));
  const entityId = input('audit-entity-id', 'entity_id', { value: filters.entity_id, placeholder: 'any' });
  const form = el('form', { id: 'audit-filter-form', class: 'form' },
    el('div', { class: 'form-grid' },
      field('Entity', entitySelect),
      field('Entity id', entityId, { hint: 'Optional UUID' })),
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'btn btn-secondary', text: 'Show entries' })));

  const row = (e) => el('tr', {},
    el('td', { text: formatWIB(e.created_at) }),
    el('td', {}, el('strong', { text: e.action })),
    el('td', { text: e.entity }),
    el('td', { class: 'mono', text: e.entity_id || '—' }),
    el('td', { text: e.actor_id ? actors.get(e.actor_id) || e.actor_id : 'system' }),
    el('td', {}, el('code', { class: 'mono details-json', text: detailsText(e.details) })));

  const load = async (reset) => {
    if (reset) before = null;
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (filters.entity) q.set('entity', filters.entity);
    if (filters.entity_id) q.set('entity_id', filters.entity_id);
    if (before !== null) q.set('before', String(before));
    const entries = await get(`/api/admin/audit-log?${q}`);
    if (reset) tbody.replaceChildren();
    for (const e of entries) tbody.append(row(e));
    if (reset && entries.length === 0) tbody.append(emptyRow(6, 'No entries match.'));
    if (entries.length) before = entries[entries.length - 1].id;
    older.hidden = entries.length < PAGE;
  };

  onSubmit(form, async (data) => {
    const idValue = text(data, 'entity_id');
    if (idValue && !isUuid(idValue)) throw new Error('Entity id must be a UUID.');
    filters = { entity: text(data, 'entity'), entity_id: idValue };
    await load(true);
    return undefined;
  }, { status });
  onAction(older, () => load(false), { status });

  fill(view, el('section', { class: 'card admin-section', attrs: { 'aria-labelledby': 'audit-title' } },
    el('h2', { id: 'audit-title', text: 'Audit log' }),
    el('p', { class: 'muted small', text: 'Every admin change, newest first, with who made it.' }),
    form,
    status,
    dataTable('admin-audit', ['When (WIB)', 'Action', 'Entity', 'Entity id', 'By', 'Details'], tbody),
    el('p', { class: 'actions' }, older)));

  // Actor ids are shown as emails when the user list has them (first page of users only).
  get(`/api/admin/users?limit=${PAGE}`)
    .then((users) => users.forEach((u) => actors.set(u.id, u.email)))
    .catch(() => {})
    .finally(() => load(true).catch((err) => say(status, describeError(err), 'error')));
}

// ---- start ---------------------------------------------------------------------------------------

onSessionChange(() => {
  // Signed out (here or in another tab), or the token was refused: back to the sign-in panel.
  if (!getSession()) {
    view = null;
    showSignIn('You are signed out. Sign in with an admin account to continue.');
  }
});

boot();
