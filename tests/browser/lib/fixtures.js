// What several test files need besides the part under test: the admin's token, published events and
// buyers who order without a browser (all through the API), and the admin signing in to the console.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import { apiCall } from './harness.js';

export const DEMO_EVENT = 'Pesta Musik Kampus 2026';

/** An address nobody has registered yet. */
export const uniqueEmail = (who) => `${who}.${randomBytes(5).toString('hex')}@mahasiswa.ac.id`;

export const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const adminTokens = new WeakMap();

/** The harness admin's bearer token on `gateway` (signed in once). */
export async function adminToken(gateway) {
  if (!adminTokens.has(gateway)) {
    const res = await apiCall(gateway.baseURL, 'POST', '/api/auth/login', {
      body: { email: gateway.admin.email, password: gateway.admin.password },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    adminTokens.set(gateway, res.body.access_token);
  }
  return adminTokens.get(gateway);
}

/** PUT the waiting-room settings of `eventId`; the settings as saved. */
export async function roomSettings(gateway, eventId, patch) {
  const res = await apiCall(gateway.baseURL, 'PUT', `/api/admin/events/${eventId}/waiting-room`, { token: await adminToken(gateway), body: patch });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

/**
 * A published event with one ticket category, on sale now unless `event.sale_opens_at` says otherwise.
 * `event` and `category` add to or override the fields sent (the event starts `daysAhead` days from
 * now); `room` (optional) is set as its waiting-room settings before it is published. Resolves with
 * the event as the API answered it, plus `categoryId`.
 */
export async function publishEvent(gateway, { event = {}, category = {}, room, daysAhead = 30 } = {}) {
  const token = await adminToken(gateway);
  const made = await apiCall(gateway.baseURL, 'POST', '/api/admin/events', {
    token,
    body: { venue: 'Aula Barat', starts_at: new Date(Date.now() + daysAhead * 86_400_000).toISOString(), description: '', ...event },
  });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  const { id } = made.body;
  const cat = await apiCall(gateway.baseURL, 'POST', `/api/admin/events/${id}/ticket-categories`, {
    token,
    body: { name: 'Reguler', price: 50_000, quota: 100, max_per_order: 4, ...category },
  });
  assert.equal(cat.status, 201, JSON.stringify(cat.body));
  if (room) await roomSettings(gateway, id, room);
  const published = await apiCall(gateway.baseURL, 'POST', `/api/admin/events/${id}/publish`, { token });
  assert.equal(published.status, 200, JSON.stringify(published.body));
  return { ...made.body, categoryId: cat.body.id };
}

/**
 * A buyer who orders through the API alone: registers, queues for `eventId` until admitted, sends the
 * order (`items` as POST /api/orders takes them) and follows it until it is decided. Resolves with the
 * buyer's `email` and `token` and the last `answer` of GET /api/orders/requests/{id}.
 */
export async function orderByApi(gateway, eventId, items, { name = 'Pembeli Cepat', password = 'tiket-api-2026' } = {}) {
  const base = gateway.baseURL;
  const email = uniqueEmail(name.split(' ')[0].toLowerCase());
  const reg = await apiCall(base, 'POST', '/api/auth/register', { body: { email, password, name } });
  assert.equal(reg.status, 201, JSON.stringify(reg.body));
  const token = reg.body.access_token;
  const joined = await apiCall(base, 'POST', `/api/events/${eventId}/queue`);
  assert.ok(joined.status < 300, JSON.stringify(joined.body));
  const visitor = joined.body.visitor_token;
  let admission = null;
  for (let i = 0; i < 60 && !admission; i++) {
    const st = await apiCall(base, 'GET', `/api/events/${eventId}/queue/status?visitor_token=${encodeURIComponent(visitor)}`);
    admission = (st.body.messages || []).find((m) => m.type === 'admitted')?.admission_token ?? null;
    if (!admission) await pause(500);
  }
  assert.ok(admission, 'the API buyer was admitted');
  const accepted = await apiCall(base, 'POST', '/api/orders', {
    token,
    headers: { 'Idempotency-Key': randomBytes(16).toString('hex'), 'Admission-Token': admission, 'Visitor-Token': visitor },
    body: { event_id: eventId, items },
  });
  assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
  let answer = accepted.body;
  for (let i = 0; i < 60 && answer.status === 'queued'; i++) {
    await pause(250);
    answer = (await apiCall(base, 'GET', `/api/orders/requests/${accepted.body.request_id}`, { token })).body;
  }
  return { email, token, answer };
}

/** Signs the harness admin in on admin.html's own form (at `#hash`, if given) and waits for the console. */
export async function signInToConsole(page, gateway, hash = '') {
  await page.goto(`/admin.html${hash}`);
  await page.locator('#admin-login-form').waitFor();
  await page.locator('#admin-email').fill(gateway.admin.email);
  await page.locator('#admin-password').fill(gateway.admin.password);
  await page.locator('#admin-login-form').getByRole('button', { name: 'Sign in' }).click();
  await page.locator('.admin-tabs').waitFor();
}

/** Answers the page's next dialog (`accept` true: OK, false: Cancel) and adds its message to `dialogs`. */
export function answerNextDialog(page, dialogs, accept) {
  page.once('dialog', (d) => {
    dialogs.push(d.message());
    return accept ? d.accept() : d.dismiss();
  });
}
