// Admin console: an admin builds and publishes an event that guests then see; a buyer is kept out; the
// Payments tab lists payment notifications that failed every attempt and replays them, and resolves
// payments under review (a signed notification with another amount than was charged): refund and accept.

import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { test } from 'node:test';

import { adminToken, answerNextDialog, orderByApi, pause, publishEvent, signInToConsole } from './lib/fixtures.js';
import { apiCall, gateway, redisCommand, screenshot, useSite, withVisitors } from './lib/harness.js';

// The fake Midtrans: payments can be started, and the webhook accepts notifications signed with its key.
useSite({ midtrans: true });

/** Text of the cells of the table row whose data-name is `name`. */
async function rowCells(page, table, name) {
  const row = page.locator(`${table} tbody tr[data-name="${name}"]`);
  await row.waitFor();
  return row.locator('td').allInnerTexts();
}

test('an admin creates an event with a ticket category and merchandise, publishes it, and a guest sees it', async () => {
  const eventName = `Konser Senja ${randomBytes(3).toString('hex')}`;
  await withVisitors(2, async (admin, guest) => {
    const page = admin.page;
    // Not signed in: admin.html offers its own sign-in form.
    await signInToConsole(page, gateway);
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
    const created = await apiCall(gateway.baseURL, 'GET', `/api/admin/events/${eventId}`, { token: await adminToken(gateway) });
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
    const settings = await apiCall(gateway.baseURL, 'GET', `/api/admin/events/${eventId}/waiting-room`, { token: await adminToken(gateway) });
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
  });
});

test('a buyer who opens admin.html is told it is not allowed', async () => {
  const email = `joko.${randomBytes(4).toString('hex')}@mahasiswa.ac.id`;
  const made = await apiCall(gateway.baseURL, 'POST', '/api/auth/register', {
    body: { email, password: 'wayang-kulit-5', name: 'Joko Widodo' },
  });
  assert.equal(made.status, 201);

  await withVisitors(1, async ({ page, errors }) => {
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
  });
});

/**
 * A notification that failed every attempt, put where the checkout worker leaves one (the gateway's
 * `webhooks:dead` hash): a browser cannot make a notification fail. It is for an order nobody placed, so
 * replaying it changes nothing.
 */
async function deadLetter({ status = 'settlement', error = 'error returned from database: payment_events is read-only for maintenance' } = {}) {
  const orderId = `QC-BROWSER-${randomBytes(4).toString('hex').toUpperCase()}`;
  const notification = JSON.stringify({
    order_id: orderId,
    status_code: '200',
    gross_amount: '270000.00',
    signature_key: randomBytes(32).toString('hex'),
    transaction_status: status,
    transaction_id: randomUUID(),
    fraud_status: 'accept',
    payment_type: 'qris',
  });
  const letter = {
    id: randomUUID(),
    midtrans_order_id: orderId,
    transaction_status: status,
    notification,
    attempts: 8,
    last_error: error,
    failed_at: new Date().toISOString(),
  };
  assert.equal(await redisCommand('HSET', `${gateway.redisPrefix}webhooks:dead`, letter.id, JSON.stringify(letter)), 1);
  return letter;
}

test('the Payments tab shows the failed notifications (none at first), the raw notification as text, and replays one after a confirmation', async (t) => {
  const deadKey = `${gateway.redisPrefix}webhooks:dead`;
  t.after(() => redisCommand('DEL', deadKey).catch(() => {}));
  await withVisitors(1, async ({ page, errors }) => {
    // Nothing has failed: the empty state.
    await signInToConsole(page, gateway);
    const listed = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/admin/webhooks/dead-letters');
    await page.locator('.admin-tabs').getByRole('link', { name: 'Payments' }).click();
    await page.waitForURL(/admin\.html#payments$/);
    assert.equal((await listed).status(), 200);
    const table = page.locator('#admin-dead-letters');
    await table.locator('tbody').getByText('No failed notifications').waitFor();
    assert.equal(await page.locator('.admin-tabs').getByRole('link', { name: 'Payments' }).getAttribute('aria-current'), 'page');
    assert.equal(await page.locator('#payments-title').innerText(), 'Payment notifications that failed');
    assert.equal(await table.locator('tbody tr').count(), 1);
    await screenshot(page, 'admin-payments-empty');
    assert.deepEqual(errors, [], 'the tab loads without console errors');

    // Two letters appear ; the error is shown as text, never as markup.
    const first = await deadLetter({ error: 'apply failed: <img src=x onerror="window.__pwned = 1"> in payment_events' });
    const second = await deadLetter({ status: 'expire' });
    await page.getByRole('button', { name: 'Refresh' }).click();
    const rows = table.locator('tbody tr[data-letter-id]');
    await rows.nth(1).waitFor();
    assert.equal(await rows.count(), 2);
    const row = table.locator(`tbody tr[data-letter-id="${first.id}"]`);
    const cells = await row.locator('td').allInnerTexts();
    assert.equal(cells[0], first.midtrans_order_id);
    assert.equal(cells[1], 'settlement');
    assert.equal(cells[2], '8');
    assert.equal(cells[3], first.last_error);
    assert.match(cells[4], /^\w{3}, \d{1,2} \w{3} \d{4}, \d{2}:\d{2} WIB$/);
    assert.equal(await row.locator('img').count(), 0);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);

    // "Show notification": the JSON exactly as Midtrans sent it, in a <pre>; and hidden again.
    const toggle = row.getByRole('button', { name: 'Show notification' });
    await toggle.click();
    const raw = page.locator(`#letter-json-${first.id}`);
    await raw.waitFor();
    assert.equal(await raw.evaluate((n) => n.tagName), 'PRE');
    assert.equal(await raw.textContent(), first.notification);
    assert.equal(await row.getByRole('button', { name: 'Hide notification' }).getAttribute('aria-expanded'), 'true');
    await screenshot(page, 'admin-payments');
    await row.getByRole('button', { name: 'Hide notification' }).click();
    await raw.waitFor({ state: 'hidden' });

    // Replay asks first: dismissed, nothing is sent.
    const replays = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && /\/api\/admin\/webhooks\/dead-letters\/[^/]+\/replay$/.test(new URL(r.url()).pathname)) replays.push(r.url());
    });
    const dialogs = [];
    answerNextDialog(page, dialogs, false);
    await row.getByRole('button', { name: 'Replay' }).click();
    await page.waitForFunction(() => !document.querySelector('#admin-dead-letters .letter-replay[aria-busy]'));
    assert.equal(dialogs.length, 1);
    assert.ok(dialogs[0].includes(first.midtrans_order_id), dialogs[0]);
    assert.deepEqual(replays, []);
    assert.equal(await rows.count(), 2);

    // Accepted: the row goes, a short message says so, the other letter stays.
    page.once('dialog', (d) => d.accept());
    await row.getByRole('button', { name: 'Replay' }).click();
    await row.waitFor({ state: 'detached' });
    assert.equal(replays.length, 1);
    assert.match(await page.locator('#payments-msg').innerText(), new RegExp(`Replayed: the notification for ${first.midtrans_order_id} is queued`));
    assert.equal(await rows.count(), 1);
    assert.equal(await redisCommand('HEXISTS', deadKey, first.id), 0, 'the letter left the dead letters');
    const again = await apiCall(gateway.baseURL, 'POST', `/api/admin/webhooks/dead-letters/${first.id}/replay`, { token: await adminToken(gateway) });
    assert.equal(again.status, 404);

    // Replayed meanwhile elsewhere (another admin): the 404 takes the row off too, and the list is empty.
    const elsewhere = await apiCall(gateway.baseURL, 'POST', `/api/admin/webhooks/dead-letters/${second.id}/replay`, { token: await adminToken(gateway) });
    assert.equal(elsewhere.status, 200);
    assert.deepEqual(elsewhere.body, { id: second.id, status: 'queued' });
    page.once('dialog', (d) => d.accept());
    await table.locator(`tbody tr[data-letter-id="${second.id}"]`).getByRole('button', { name: 'Replay' }).click();
    await table.locator('tbody').getByText('No failed notifications').waitFor();
    assert.match(await page.locator('#payments-msg').innerText(), /already been replayed/);
    assert.equal(await rows.count(), 0);

    // The 404 of the last replay is logged by the browser as a failed resource; nothing else.
    assert.deepEqual(errors.filter((e) => !/Failed to load resource/.test(e)), []);
  });
});

// ---- payments under review ------------------------------------------------------------------------

/**
 * A new buyer through the real checkout: registers, queues until admitted, orders one ticket, and starts a
 * Snap payment at the fake Midtrans. Resolves with the buyer and the payment as the API answered it.
 */
async function buyerWithPendingPayment(event) {
  const { email, token, answer } = await orderByApi(gateway, event.id, [{ ticket_category_id: event.categoryId, quantity: 1 }],
    { name: 'Dewi Lestari', password: 'bayar-ditinjau-7' });
  assert.equal(answer.status, 'confirmed', JSON.stringify(answer));
  const payment = await apiCall(gateway.baseURL, 'POST', `/api/orders/${answer.order_id}/payment`, {
    token,
    headers: { 'Idempotency-Key': randomUUID() },
    body: { method: 'snap' },
  });
  assert.equal(payment.status, 200, JSON.stringify(payment.body));
  assert.equal(payment.body.status, 'pending');
  return { email, token, orderId: answer.order_id, payment: payment.body };
}

/**
 * What Midtrans would send for a settlement of `amount` rupiah (another amount than was charged), signed
 * with the server key the harness gave the gateway: sha512(order_id + status_code + gross_amount + key).
 */
async function notifyAmount(midtransOrderId, amount) {
  const grossAmount = `${amount}.00`;
  const statusCode = '200';
  const signature = createHash('sha512').update(`${midtransOrderId}${statusCode}${grossAmount}${gateway.midtrans.serverKey}`).digest('hex');
  const sent = await apiCall(gateway.baseURL, 'POST', '/api/webhooks/midtrans', {
    body: {
      order_id: midtransOrderId,
      status_code: statusCode,
      gross_amount: grossAmount,
      signature_key: signature,
      transaction_status: 'settlement',
      transaction_id: randomUUID(),
      fraud_status: 'accept',
      payment_type: 'qris',
      status_message: 'midtrans payment notification',
    },
  });
  assert.equal(sent.status, 200, JSON.stringify(sent.body));
}

/** Waits (bounded) until the checkout worker has put every one of `paymentIds` under review. */
async function underReview(paymentIds) {
  let listed = [];
  for (let i = 0; i < 75; i++) {
    const res = await apiCall(gateway.baseURL, 'GET', '/api/admin/payments?status=needs_review', { token: await adminToken(gateway) });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    listed = res.body;
    if (paymentIds.every((id) => listed.some((p) => p.payment_id === id))) return listed;
    await pause(200);
  }
  assert.fail(`payments ${paymentIds.join(', ')} not under review within 15 s (listed: ${JSON.stringify(listed)})`);
}

async function orderStatus(buyer) {
  const res = await apiCall(gateway.baseURL, 'GET', `/api/orders/${buyer.orderId}`, { token: buyer.token });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.status;
}

test('the Payments tab lists payments under review; Refund cancels the order and Accept makes it paid, each after a confirmation, and one resolved elsewhere leaves the list', async () => {
  // Arrange, through the real system: three buyers' orders with a Snap payment each, then a signed
  // notification for each that reports another amount than was charged.
  const event = await publishEvent(gateway, {
    event: { name: `Malam Keroncong ${randomBytes(3).toString('hex')}`, venue: 'Gedung Serbaguna' },
    category: { price: 80_000, quota: 20, max_per_order: 2 },
    daysAhead: 45,
  });
  const refunded = await buyerWithPendingPayment(event);
  const elsewhere = await buyerWithPendingPayment(event);
  const accepted = await buyerWithPendingPayment(event);
  assert.equal(refunded.payment.gross_amount, 80_000);
  await notifyAmount(refunded.payment.midtrans_order_id, 8_000);
  await notifyAmount(elsewhere.payment.midtrans_order_id, 800_000);
  await notifyAmount(accepted.payment.midtrans_order_id, 79_000);
  const all = [refunded, elsewhere, accepted];
  await underReview(all.map((b) => b.payment.payment_id));
  for (const b of all) assert.equal(await orderStatus(b), 'payment_review');

  await withVisitors(1, async ({ page, errors }) => {
    await signInToConsole(page, gateway, '#payments');
    const table = page.locator('#admin-reviews');
    const refundRow = table.locator(`tbody tr[data-payment-id="${refunded.payment.payment_id}"]`);
    const elsewhereRow = table.locator(`tbody tr[data-payment-id="${elsewhere.payment.payment_id}"]`);
    const acceptRow = table.locator(`tbody tr[data-payment-id="${accepted.payment.payment_id}"]`);
    await refundRow.waitFor();
    await elsewhereRow.waitFor();
    await acceptRow.waitFor();
    assert.equal(await table.locator('tbody tr[data-payment-id]').count(), 3);
    assert.equal(await page.locator('#reviews-title').innerText(), 'Payments under review');
    assert.equal(await page.locator('section[aria-labelledby="reviews-title"]').count(), 1);
    assert.match(await page.locator('section[aria-labelledby="reviews-title"]').innerText(), /unresolved for a day is refunded automatically/);
    // Above the failed notifications, which still load.
    await page.locator('#admin-dead-letters tbody').getByText('No failed notifications').waitFor();
    assert.equal(await page.evaluate(() => {
      const reviews = document.getElementById('admin-reviews');
      const letters = document.getElementById('admin-dead-letters');
      return Boolean(reviews.compareDocumentPosition(letters) & Node.DOCUMENT_POSITION_FOLLOWING);
    }), true, 'the review section comes first');
    const cells = await refundRow.locator('td').allInnerTexts();
    assert.equal(await refundRow.locator('.review-order').innerText(), refunded.payment.midtrans_order_id);
    assert.equal(await refundRow.locator('.review-buyer').innerText(), refunded.email);
    assert.equal(await refundRow.locator('.review-charged').innerText(), 'Rp 80.000');
    assert.equal(await refundRow.locator('.review-reported').innerText(), 'Midtrans: Rp 8.000');
    assert.equal(cells[2], 'Payment under review');
    assert.match(cells[3], /^\w{3}, \d{1,2} \w{3} \d{4}, \d{2}:\d{2} WIB$/);
    assert.ok(await refundRow.locator('.review-accept').isVisible() && await refundRow.locator('.review-refund').isVisible());
    assert.deepEqual(await table.locator('thead th').evaluateAll((ths) => ths.map((th) => th.getAttribute('scope'))), Array(5).fill('col'));
    assert.equal(await table.locator('thead th .sr-only').textContent(), 'Actions');
    await screenshot(page, 'admin-payments-review');

    const reviews = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && /\/api\/admin\/payments\/[^/]+\/review$/.test(new URL(r.url()).pathname)) reviews.push(r);
    });

    // Refund asks first: dismissed, nothing is sent.
    const dialogs = [];
    answerNextDialog(page, dialogs, false);
    await refundRow.getByRole('button', { name: 'Refund' }).click();
    await page.waitForFunction(() => !document.querySelector('#admin-reviews [aria-busy]'));
    assert.equal(dialogs.length, 1);
    assert.ok(dialogs[0].includes(refunded.payment.midtrans_order_id), dialogs[0]);
    assert.match(dialogs[0], /cancelled/);
    assert.match(dialogs[0], /back on sale/);
    assert.match(dialogs[0], /refunded/);
    assert.equal(reviews.length, 0);

    // Accepted at the dialog: one request, the row goes, the message says so, the order is cancelled.
    answerNextDialog(page, dialogs, true);
    await refundRow.getByRole('button', { name: 'Refund' }).dblclick();
    await refundRow.waitFor({ state: 'detached' });
    assert.equal(reviews.length, 1, `sent ${reviews.length} review requests`);
    assert.deepEqual(reviews[0].postDataJSON(), { decision: 'refund' });
    assert.equal(new URL(reviews[0].url()).pathname, `/api/admin/payments/${refunded.payment.payment_id}/review`);
    assert.match(await page.locator('#reviews-msg').innerText(), new RegExp(`^Refunding: the order ${refunded.payment.midtrans_order_id} is cancelled`));
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Accept', 'focus moves to the next payment');
    assert.equal(await orderStatus(refunded), 'cancelled');

    // Resolved meanwhile by someone else (another admin): the 409 not_under_review takes the row off too.
    const other = await apiCall(gateway.baseURL, 'POST', `/api/admin/payments/${elsewhere.payment.payment_id}/review`, {
      token: await adminToken(gateway),
      body: { decision: 'refund' },
    });
    assert.equal(other.status, 200, JSON.stringify(other.body));
    assert.equal(other.body.outcome, 'refund_owed');
    answerNextDialog(page, dialogs, true);
    await elsewhereRow.getByRole('button', { name: 'Accept' }).click();
    await elsewhereRow.waitFor({ state: 'detached' });
    assert.equal(reviews.length, 2);
    assert.deepEqual(reviews[1].postDataJSON(), { decision: 'accept' });
    assert.match(await page.locator('#reviews-msg').innerText(), new RegExp(`^The payment for ${elsewhere.payment.midtrans_order_id} was already resolved`));
    assert.equal(await orderStatus(elsewhere), 'cancelled', 'the late Accept changed nothing');

    // Accept: the dialog says what happens, the order becomes paid, the list is empty.
    answerNextDialog(page, dialogs, true);
    await acceptRow.getByRole('button', { name: 'Accept' }).click();
    await table.locator('tbody').getByText('No payments under review.').waitFor();
    assert.equal(dialogs.length, 4);
    assert.ok(dialogs[3].includes(accepted.payment.midtrans_order_id), dialogs[3]);
    assert.match(dialogs[3], /paid/);
    assert.match(dialogs[3], /tickets/);
    assert.equal(reviews.length, 3);
    assert.deepEqual(reviews[2].postDataJSON(), { decision: 'accept' });
    assert.match(await page.locator('#reviews-msg').innerText(), new RegExp(`^Accepted: the order ${accepted.payment.midtrans_order_id} is paid`));
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'reviews-reload');
    assert.equal(await orderStatus(accepted), 'paid');
    const left = await apiCall(gateway.baseURL, 'GET', '/api/admin/payments?status=needs_review', { token: await adminToken(gateway) });
    assert.deepEqual(left.body.filter((p) => all.some((b) => b.payment.payment_id === p.payment_id)), []);
    await screenshot(page, 'admin-payments-review-empty');

    // The 409 of the late Accept is logged by the browser as a failed resource; nothing else.
    assert.deepEqual(errors.filter((e) => !/Failed to load resource/.test(e)), []);
  });
});
