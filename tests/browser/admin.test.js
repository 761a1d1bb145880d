// Admin console: an admin builds and publishes an event that guests then see; a buyer is kept out.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';

import { apiCall, launchBrowser, newVisitor, screenshot, startGateway } from './lib/harness.js';

let gateway;
let chrome;

before(async () => {
  gateway = await startGateway();
  chrome = await launchBrowser();
});

after(async () => {
  await chrome?.close();
  await gateway?.stop();
});

/** Text of the cells of the table row whose data-name is `name`. */
async function rowCells(page, table, name) {
  const row = page.locator(`${table} tbody tr[data-name="${name}"]`);
  await row.waitFor();
  return row.locator('td').allInnerTexts();
}

test('an admin creates an event with a ticket category and merchandise, publishes it, and a guest sees it', async () => {
  const eventName = `Konser Senja ${randomBytes(3).toString('hex')}`;
  const admin = await newVisitor(chrome.browser, gateway.baseURL);
  const guest = await newVisitor(chrome.browser, gateway.baseURL);
  try {
    const page = admin.page;
    // Not signed in: admin.html offers its own sign-in form.
    await page.goto('/admin.html');
    await page.locator('#admin-login-form').waitFor();
    await page.locator('#admin-email').fill(gateway.admin.email);
    await page.locator('#admin-password').fill(gateway.admin.password);
    await page.locator('#admin-login-form').getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#admin-events').waitFor();
    assert.match(await page.locator('#admin-events').innerText(), /Pesta Musik Kampus 2026/);
    await screenshot(page, 'admin-events');

    // Create a draft event (times are typed in WIB).
    const create = page.locator('#create-event-form');
    await create.getByLabel('Name').fill(eventName);
    await create.getByLabel('Venue').fill('Aula Barat, Institut Teknologi Kampus, Surabaya');
    await create.getByLabel('Starts (WIB)').fill('2027-03-14T19:00');
    await create.getByLabel('Ends (WIB)').fill('2027-03-14T23:00');
    await create.getByLabel('Description').fill('Acoustic evening with the campus choir.');
    await create.getByRole('button', { name: 'Create event' }).click();
    await page.waitForURL(/admin\.html#event\/[0-9a-f-]{36}$/);
    const eventId = page.url().split('#event/')[1];
    await page.locator('#event-name').getByText(eventName).waitFor();
    assert.equal(await page.locator('#event-name .status-pill').innerText(), 'draft');
    assert.match(await page.locator('#event-msg').innerText(), /Created/);
    // 19:00 WIB is 12:00 UTC.
    const created = await apiCall(gateway.baseURL, 'GET', `/api/admin/events/${eventId}`, { token: await adminToken() });
    assert.equal(created.status, 200);
    assert.equal(new Date(created.body.starts_at).toISOString(), '2027-03-14T12:00:00.000Z');

    // A ticket category.
    const cat = page.locator('#add-category-form');
    await cat.getByLabel('Category name').fill('Reguler');
    await cat.getByLabel('Price (Rp)').fill('85000');
    await cat.getByLabel('Quota').fill('300');
    await cat.getByLabel('Max per order').fill('4');
    await cat.getByRole('button', { name: 'Add ticket category' }).click();
    let cells = await rowCells(page, '#admin-categories', 'Reguler');
    assert.deepEqual(cells.slice(2, 6), ['0', '0', '300', '4']);

    // A merchandise item.
    const merch = page.locator('#add-merch-form');
    await merch.getByLabel('Item name').fill('Bandana');
    await merch.getByLabel('Price (Rp)').fill('35000');
    await merch.getByLabel('Stock').fill('50');
    await merch.getByRole('button', { name: 'Add merchandise' }).click();
    cells = await rowCells(page, '#admin-merch', 'Bandana');
    assert.deepEqual(cells.slice(1, 5), ['0', '0', '50', '5']);

    // Edit the category's quota and price in place.
    await page.getByLabel('Quota of Reguler').fill('250');
    await page.getByLabel('Price of Reguler').fill('90000');
    await page.getByRole('form', { name: 'Edit Reguler' }).getByRole('button', { name: 'Save' }).click();
    await page.locator('#categories-msg').getByText('Saved Reguler: Rp 90.000, quota 250.').waitFor();
    cells = await rowCells(page, '#admin-categories', 'Reguler');
    assert.equal(cells[4], '250');

    // Waiting-room settings.
    const room = page.locator('#waiting-room-form');
    await room.getByLabel('Admissions per second').fill('25');
    await room.getByLabel('Pause admissions').check();
    await room.getByRole('button', { name: 'Save waiting-room settings' }).click();
    await page.locator('#room-msg').getByText('Saved. Admissions are paused.').waitFor();
    const settings = await apiCall(gateway.baseURL, 'GET', `/api/admin/events/${eventId}/waiting-room`, { token: await adminToken() });
    assert.equal(settings.body.admission_rate_per_sec, 25);
    assert.equal(settings.body.paused, true);

    // Publish.
    await page.locator('#publish-toggle').click();
    await page.locator('#publish-msg').getByText('Published').waitFor();
    assert.equal(await page.locator('#event-name .status-pill').innerText(), 'published');
    assert.equal(await page.locator('#publish-toggle').innerText(), 'Unpublish');
    await screenshot(page, 'admin');

    // A guest (another browser context, no session) now finds it on the landing page.
    const g = guest.page;
    await g.goto('/');
    const card = g.locator('.event-card', { hasText: eventName });
    await card.waitFor();
    const text = await card.innerText();
    assert.match(text, /from\s*Rp 90\.000/, text);
    assert.match(text, /250 tickets left/, text);
    assert.match(text, /Sun, 14 Mar 2027, 19:00 WIB/, text);
    await card.getByRole('link', { name: eventName }).click();
    await g.locator('#ticket-list').waitFor();
    assert.deepEqual(await g.locator('#ticket-list article.product').evaluateAll((cs) => cs.map((c) => c.dataset.name)), ['Reguler']);
    assert.deepEqual(await g.locator('#merch-list article.product').evaluateAll((cs) => cs.map((c) => c.dataset.name)), ['Bandana']);

    // The audit log shows what the admin did.
    await page.goto('/admin.html#audit');
    await page.locator('#admin-audit tbody').getByText('event.publish').waitFor();
    const audit = await page.locator('#admin-audit').innerText();
    for (const action of ['event.create', 'ticket_category.create', 'merchandise.create', 'ticket_category.update', 'waiting_room.update', 'event.publish']) {
      assert.ok(audit.includes(action), `audit log lacks ${action}`);
    }
    assert.ok(audit.includes(gateway.admin.email), 'audit entries name the admin by email');

    assert.deepEqual(admin.errors, []);
    assert.deepEqual(guest.errors, []);
  } finally {
    await admin.context.close();
    await guest.context.close();
  }
});

test('a buyer who opens admin.html is told it is not allowed', async () => {
  const email = `joko.${randomBytes(4).toString('hex')}@mahasiswa.ac.id`;
  const made = await apiCall(gateway.baseURL, 'POST', '/api/auth/register', {
    body: { email, password: 'wayang-kulit-5', name: 'Joko Widodo' },
  });
  assert.equal(made.status, 201);

  const { context, page, errors } = await newVisitor(chrome.browser, gateway.baseURL);
  try {
    await page.goto('/login.html?next=admin.html');
    await page.locator('#login-email').fill(email);
    await page.locator('#login-password').fill('wayang-kulit-5');
    const adminList = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/admin/events');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/admin\.html$/);
    assert.equal((await adminList).status(), 403);
    const denied = page.locator('#admin-denied');
    await denied.waitFor();
    const text = await denied.innerText();
    assert.match(text, /Not allowed/);
    assert.match(text, /role is buyer/);
    assert.equal(await page.locator('#create-event-form').count(), 0);
    assert.equal(await page.locator('.admin-tabs').count(), 0);
    await screenshot(page, 'admin-denied');
    // Console errors here would only be the browser logging the 403 response itself.
    assert.deepEqual(errors.filter((e) => !/403/.test(e)), []);
  } finally {
    await context.close();
  }
});

let cachedToken = null;
async function adminToken() {
  if (!cachedToken) {
    const res = await apiCall(gateway.baseURL, 'POST', '/api/auth/login', {
      body: { email: gateway.admin.email, password: gateway.admin.password },
    });
    assert.equal(res.status, 200);
    cachedToken = res.body.access_token;
  }
  return cachedToken;
}
