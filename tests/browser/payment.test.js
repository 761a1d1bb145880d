// Paying, e-tickets and check-in in a real browser, against the fake Midtrans (tests/fake-midtrans):
// a new buyer orders a ticket and a T-shirt, pays on the Snap page, comes back to the order page, which
// waits for the payment notification, opens the e-tickets (QR codes for the ticket and the pickup), and
// staff check the ticket in at the gate — once. A gate bound to one event refuses codes for another
// event and leaves them unused. And QRIS: the QR code shown on the order page itself.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';

import { DEMO_EVENT, publishEvent, uniqueEmail } from './lib/fixtures.js';
import { apiCall, gateway, screenshot, useSite, withVisitors } from './lib/harness.js';

const ADMITTED_WITHIN = 20_000;
const PAID_WITHIN = 30_000;

// The browser logs every 4xx/5xx answer as a failed resource; the tests provoke some on purpose
// (409 already checked in, 404 unknown code). Script errors are still caught.
const unexpected = (errors) => errors.filter((e) => !/Failed to load resource/.test(e));

useSite({ midtrans: true });

const isPaymentRequest = (orderId) => (r) =>
  r.method() === 'POST' && new URL(r.url()).pathname === `/api/orders/${orderId}/payment`;

/**
 * A new buyer in the UI: registers, puts one Festival ticket and one Official T-shirt in the cart, waits
 * in the queue until admitted and places the order. Resolves with the order id, on the order page.
 */
async function registerAndOrder(page, name) {
  await page.goto('/login.html?next=index.html');
  await page.locator('#register-name').fill(name);
  await page.locator('#register-email').fill(uniqueEmail(name.split(' ')[0].toLowerCase()));
  await page.locator('#register-password').fill('bayar-konser-2026');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL(/\/index\.html$/);

  const card = page.locator('.event-card', { hasText: DEMO_EVENT });
  await card.getByRole('link', { name: DEMO_EVENT }).click();
  await page.waitForURL(/\/event\.html\?id=[0-9a-f-]{36}$/);
  await page.locator('#ticket-list').waitFor();
  await page.getByRole('button', { name: 'One more Festival' }).click();
  await page.getByRole('button', { name: 'One more Official T-shirt' }).click();
  await page.getByRole('button', { name: 'Add to cart' }).click();
  await page.getByText('Added to your cart.').waitFor();
  await page.getByRole('link', { name: 'View cart (2)' }).click();
  await page.waitForURL(/\/cart\.html$/);
  await page.locator('#cart-table').waitFor();

  await page.getByRole('button', { name: 'Continue to checkout' }).click();
  await page.waitForURL(/\/queue\.html\?event=[0-9a-f-]{36}$/);
  await page.locator('#queue-admitted').getByRole('heading', { name: "It's your turn!" }).waitFor({ timeout: ADMITTED_WITHIN });
  await page.getByRole('link', { name: 'Go to your cart' }).click();
  await page.waitForURL(/\/cart\.html$/);
  await page.getByRole('button', { name: 'Place order' }).click();
  await page.waitForURL(/\/order\.html\?id=[0-9a-f-]{36}$/);
  await page.locator('#order-status[data-status="pending_payment"]').waitFor();
  assert.equal(await page.locator('#order-total').innerText(), 'Rp 270.000');
  return new URL(page.url()).searchParams.get('id');
}

/** What the browser made of a QR code: an SVG element of the SVG namespace, drawn at a readable size. */
async function svgFacts(locator) {
  return locator.evaluate((svg) => {
    const box = svg.getBoundingClientRect();
    return {
      namespace: svg.namespaceURI,
      shapes: svg.querySelectorAll('path, rect').length,
      width: Math.round(box.width),
      height: Math.round(box.height),
    };
  });
}

function assertReadableQr(facts, what) {
  assert.equal(facts.namespace, 'http://www.w3.org/2000/svg', `${what}: ${JSON.stringify(facts)}`);
  assert.ok(facts.shapes > 0, `${what} draws something: ${JSON.stringify(facts)}`);
  assert.ok(facts.width >= 150 && facts.height >= 150, `${what} is large enough to scan: ${JSON.stringify(facts)}`);
}

test('a buyer pays on the Snap page, gets e-tickets with QR codes, and staff check the ticket in once', async () => {
  await withVisitors(2, async (buyer, staff) => {
    const page = buyer.page;
    const orderId = await registerAndOrder(page, 'Putri Ayu Lestari');
    assert.equal(await page.locator('.site-header').getByRole('link', { name: 'Check-in' }).count(), 0, 'no check-in link for a buyer');

    // The two ways to pay.
    const snap = page.getByRole('button', { name: 'Pay with Snap (cards, e-wallets, QRIS, VA)', exact: true });
    const qris = page.getByRole('button', { name: 'Pay with QRIS', exact: true });
    await snap.waitFor();
    assert.equal(await qris.isVisible(), true);
    assert.match(await page.locator('#order-countdown').innerText(), /^Pay within 1[45]:\d{2} to keep these tickets\.$/);
    await screenshot(page, 'payment-order');

    // Snap: exactly one payment request, with the key kept for this order, then Midtrans's page.
    const payments = [];
    page.on('request', (r) => {
      if (isPaymentRequest(orderId)(r)) payments.push(r);
    });
    const visited = [];
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) visited.push(frame.url());
    });
    const fakeOrigin = new URL(gateway.midtrans.baseURL).origin;
    await snap.dblclick();
    await page.waitForURL((url) => url.origin === fakeOrigin);
    assert.equal(payments.length, 1, `sent ${payments.length} payment requests`);
    assert.deepEqual(payments[0].postDataJSON(), { method: 'snap' });
    const key = payments[0].headers()['idempotency-key'];
    assert.match(key || '', /^[0-9a-f-]{16,}$/);
    await screenshot(page, 'payment-snap-page');

    // Back from Midtrans the page waits for the confirmation. The first look at the order is held back
    // as "still pending" so that the waiting state is seen even when the notification was quicker.
    let heldBack = false;
    await page.route(`**/api/orders/${orderId}`, async (route) => {
      if (route.request().method() !== 'GET' || heldBack) return route.continue();
      heldBack = true;
      const response = await route.fetch();
      const body = await response.json();
      body.status = 'pending_payment';
      if (body.payment) body.payment.status = 'pending';
      return route.fulfill({ response, json: body });
    });
    await page.locator('#pay').click();
    await page.waitForURL(new RegExp(`/order\\.html\\?id=${orderId}`));
    assert.ok(visited.some((u) => u.includes(`/order.html?id=${orderId}`) && /[?&]transaction_status=/.test(u)),
      `came back with Midtrans's parameters:\n${visited.join('\n')}`);
    await page.locator('#order-confirming').getByText('Waiting for payment confirmation…').waitFor();
    await page.locator('#order-status[data-status="paid"]').waitFor({ timeout: PAID_WITHIN });
    await page.unroute(`**/api/orders/${orderId}`);

    // Paid: the state in words, the payment line, the e-tickets link; Midtrans's parameters are gone
    // from the address (a reload does not wait again) and so is the kept key.
    assert.equal(await page.locator('#order-status').innerText(), 'Paid');
    assert.equal(await page.locator('#payment-status').getAttribute('data-status'), 'paid');
    assert.match(await page.locator('#order-state').innerText(), /Paid/);
    const ticketsLink = page.locator('#view-tickets');
    assert.equal(await ticketsLink.innerText(), 'View your e-tickets');
    assert.equal(await ticketsLink.getAttribute('href'), `tickets.html?id=${orderId}`);
    await page.waitForURL(new RegExp(`/order\\.html\\?id=${orderId}$`));
    assert.equal(await page.evaluate((id) => localStorage.getItem(`qc.pay.${id}`), orderId), null);
    assert.equal(await page.getByRole('button', { name: 'Cancel order' }).count(), 0);
    assert.equal(payments.length, 1);
    await screenshot(page, 'payment-paid');

    // E-tickets: one ticket and one merchandise pickup, each with its QR code and its code in text.
    await ticketsLink.click();
    await page.waitForURL(new RegExp(`/tickets\\.html\\?id=${orderId}$`));
    const ticketCards = page.locator('#ticket-cards .ticket-card');
    await ticketCards.first().waitFor();
    assert.equal(await page.locator('#tickets-event').innerText(), DEMO_EVENT);
    assert.equal(await ticketCards.count(), 1);
    const ticket = ticketCards.first();
    assert.equal(await ticket.locator('.ticket-item').innerText(), 'Festival');
    assert.equal(await ticket.getAttribute('data-status'), 'valid');
    assert.equal(await ticket.locator('.ticket-status').innerText(), 'Valid');
    assert.match(await ticket.locator('.ticket-holder').innerText(), /Putri Ayu Lestari/);
    assertReadableQr(await svgFacts(ticket.locator('.qr svg')), 'the ticket QR');
    const ticketCode = await ticket.getAttribute('data-code');
    assert.ok(ticketCode && ticketCode.length >= 6, `ticket code "${ticketCode}"`);
    // Shown under the QR code (in groups of four, which the gate ignores).
    assert.equal((await ticket.locator('.ticket-code').innerText()).replace(/\s/g, ''), ticketCode);

    const pickups = page.locator('#pickup-cards .ticket-card');
    assert.equal(await pickups.count(), 1);
    const pickup = pickups.first();
    assert.match(await pickup.locator('.ticket-item').innerText(), /Official T-shirt/);
    assert.equal(await pickup.getAttribute('data-kind'), 'merchandise_pickup');
    assertReadableQr(await svgFacts(pickup.locator('.qr svg')), 'the pickup QR');
    const pickupCode = await pickup.getAttribute('data-code');
    assert.equal((await pickup.locator('.ticket-code').innerText()).replace(/\s/g, ''), pickupCode);
    assert.ok(pickupCode && pickupCode !== ticketCode, `pickup code "${pickupCode}"`);
    assert.match(await page.locator('#pickup-hint').innerText(), /Show this code at the merchandise desk/);
    await screenshot(page, 'tickets');

    // Printed: no site header, footer or buttons; the codes stay.
    await page.emulateMedia({ media: 'print' });
    assert.equal(await page.locator('.site-header').isVisible(), false);
    assert.equal(await page.locator('#print-tickets').isVisible(), false);
    assert.equal(await ticket.locator('.qr svg').isVisible(), true);
    await screenshot(page, 'tickets-print');
    await page.emulateMedia({ media: 'screen' });

    // Staff at the gate: the harness admin signs in, lands on check-in, and "scans" the ticket (types the
    // code and presses Enter, like a handheld scanner).
    const s = staff.page;
    await signInAtGate(s);
    const input = s.locator('#checkin-code');
    assert.equal(await s.evaluate(() => document.activeElement && document.activeElement.id), 'checkin-code');
    assert.equal(await s.locator('.site-header').getByRole('link', { name: 'Check-in' }).getAttribute('aria-current'), 'page');

    const answers = [];
    s.on('response', (r) => {
      if (new URL(r.url()).pathname === '/api/checkin') answers.push(r.status());
    });
    const result = s.locator('#checkin-result');
    await s.keyboard.type(ticketCode);
    await s.keyboard.press('Enter');
    await s.locator('#checkin-result[data-result="ok"]').waitFor();
    let text = await result.innerText();
    assert.match(text, /Checked in/);
    assert.match(text, /Festival/);
    assert.match(text, /Putri Ayu Lestari/);
    assert.ok(text.includes(DEMO_EVENT), text);
    assert.equal(await input.inputValue(), '', 'the field is empty for the next scan');
    await screenshot(s, 'checkin-ok');

    // The same code again: amber, with when it was checked in.
    await s.keyboard.type(ticketCode);
    await s.keyboard.press('Enter');
    await s.locator('#checkin-result[data-result="already"]').waitFor();
    text = await result.innerText();
    assert.match(text, /Already checked in/);
    assert.match(text, /When\s+\S.* WIB/);
    assert.ok(text.includes(gateway.admin.email), `names who checked it in: ${text}`);
    await screenshot(s, 'checkin-already');

    // A code nobody issued: red.
    await s.keyboard.type('QC-NO-SUCH-CODE-0000');
    await s.keyboard.press('Enter');
    await s.locator('#checkin-result[data-result="unknown"]').waitFor();
    assert.match(await result.innerText(), /Unknown code/);

    assert.deepEqual(await s.locator('#checkin-log li').evaluateAll((lis) => lis.map((li) => li.dataset.result)), ['unknown', 'already', 'ok']);
    assert.deepEqual(answers, [200, 409, 404]);

    // The admin console links to check-in too.
    await s.goto('/admin.html');
    await s.locator('.admin-tabs').getByRole('link', { name: 'Check-in' }).waitFor();

    // The buyer's e-tickets now show the ticket as used; the pickup is still valid.
    await page.reload();
    await ticketCards.first().waitFor();
    assert.equal(await ticket.getAttribute('data-status'), 'checked_in');
    assert.match(await ticket.locator('.ticket-status').innerText(), /^Checked in at .+ WIB$/);
    assert.equal(await pickup.getAttribute('data-status'), 'valid');

    assert.deepEqual(unexpected(buyer.errors), []);
    assert.deepEqual(unexpected(staff.errors), []);
  });
});

/** Pays the order on the fake Snap page and waits for the order page to say it is paid. */
async function payOnSnap(page, orderId) {
  const fakeOrigin = new URL(gateway.midtrans.baseURL).origin;
  await page.getByRole('button', { name: 'Pay with Snap (cards, e-wallets, QRIS, VA)', exact: true }).click();
  await page.waitForURL((url) => url.origin === fakeOrigin);
  await page.locator('#pay').click();
  await page.waitForURL(new RegExp(`/order\\.html\\?id=${orderId}`));
  await page.locator('#order-status[data-status="paid"]').waitFor({ timeout: PAID_WITHIN });
}

/** The staff member (the harness admin) signs in from checkin.html and lands back on it. */
async function signInAtGate(page) {
  await page.goto('/checkin.html');
  await page.waitForURL(/\/login\.html\?next=checkin\.html$/);
  await page.locator('#login-email').fill(gateway.admin.email);
  await page.locator('#login-password').fill(gateway.admin.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/checkin\.html$/);
  await page.locator('#checkin-code').waitFor();
}

test('a gate bound to an event refuses a code for another event without using it, remembers its event, and admits its own codes', async () => {
  // A second published event.
  const other = await publishEvent(gateway, {
    event: { name: `Malam Jazz Kampus ${randomBytes(3).toString('hex')}`, venue: 'Lapangan Rektorat' },
    category: { price: 60_000, quota: 50 },
    daysAhead: 60,
  });
  const demo = (await apiCall(gateway.baseURL, 'GET', '/api/events?limit=100')).body.find((e) => e.name === DEMO_EVENT);
  assert.ok(demo, 'the demo event is published');

  await withVisitors(2, async (buyer, staff) => {
    // A paid order for the demo event: one ticket and one T-shirt pickup.
    const page = buyer.page;
    const orderId = await registerAndOrder(page, 'Dewi Sartika');
    await payOnSnap(page, orderId);
    await page.goto(`/tickets.html?id=${orderId}`);
    const ticket = page.locator('#ticket-cards .ticket-card').first();
    await ticket.waitFor();
    const ticketCode = await ticket.getAttribute('data-code');
    const pickupCode = await page.locator('#pickup-cards .ticket-card').first().getAttribute('data-code');
    assert.ok(ticketCode && pickupCode && ticketCode !== pickupCode);

    const s = staff.page;
    const sent = [];
    s.on('request', (r) => {
      if (r.method() === 'POST' && new URL(r.url()).pathname === '/api/checkin') sent.push(r.postDataJSON());
    });
    const answers = [];
    s.on('response', (r) => {
      if (new URL(r.url()).pathname === '/api/checkin') answers.push(r.status());
    });
    await signInAtGate(s);

    // The picker: "Any event" first and chosen, then the published events.
    const picker = s.locator('#checkin-event');
    await picker.locator(`option[value="${other.id}"]`).waitFor({ state: 'attached' });
    assert.equal(await picker.inputValue(), '');
    const options = await picker.locator('option').evaluateAll((os) => os.map((o) => ({ value: o.value, text: o.textContent })));
    assert.deepEqual(options[0], { value: '', text: 'Any event' });
    assert.ok(options.some((o) => o.value === demo.id && o.text.startsWith(`${DEMO_EVENT} — `) && o.text.endsWith(' WIB')), JSON.stringify(options));
    assert.ok(options.some((o) => o.value === other.id && o.text.startsWith(other.name)), JSON.stringify(options));

    // Bound to the other event; the focus goes back to the code field for the scanner.
    await picker.selectOption(other.id);
    assert.equal(await s.evaluate(() => document.activeElement && document.activeElement.id), 'checkin-code');
    assert.deepEqual(await s.evaluate(() => JSON.parse(localStorage.getItem('qc.checkin.event.v1'))), { id: other.id, name: other.name });
    assert.ok((await s.locator('#checkin-event-hint').innerText()).includes(`Only codes for ${other.name}`));

    // The demo event's ticket: red, names the ticket's event and this gate's, and is not used.
    const result = s.locator('#checkin-result');
    await s.keyboard.type(ticketCode);
    await s.keyboard.press('Enter');
    await s.locator('#checkin-result[data-result="wrong_event"]').waitFor();
    let text = await result.innerText();
    assert.match(text, /Ticket for another event/);
    assert.ok(text.includes(DEMO_EVENT), text);
    assert.equal(await result.locator('.checkin-facts div', { hasText: 'This gate' }).locator('dd').innerText(), other.name);
    assert.equal(await s.locator('#checkin-code').inputValue(), '');
    assert.deepEqual(sent.at(-1), { code: ticketCode, event_id: other.id });
    await screenshot(s, 'checkin-wrong-event');

    // The choice survives a reload; the pickup code is refused too.
    await s.reload();
    await picker.locator(`option[value="${other.id}"]`).waitFor({ state: 'attached' });
    assert.equal(await picker.inputValue(), other.id);
    await s.locator('#checkin-code').focus();
    await s.keyboard.type(pickupCode);
    await s.keyboard.press('Enter');
    await s.locator('#checkin-result[data-result="wrong_event"]').waitFor();
    assert.deepEqual(sent.at(-1), { code: pickupCode, event_id: other.id });

    // The gate for the demo event admits the ticket: the refused scan did not use it.
    await picker.selectOption(demo.id);
    await s.keyboard.type(ticketCode);
    await s.keyboard.press('Enter');
    await s.locator('#checkin-result[data-result="ok"]').waitFor();
    text = await result.innerText();
    assert.match(text, /Checked in/);
    assert.match(text, /Dewi Sartika/);
    assert.ok(text.includes(DEMO_EVENT), text);
    assert.deepEqual(sent.at(-1), { code: ticketCode, event_id: demo.id });

    // "Any event" forgets the choice and sends no event_id, as before.
    await picker.selectOption('');
    assert.equal(await s.evaluate(() => localStorage.getItem('qc.checkin.event.v1')), null);
    assert.equal(await s.locator('#checkin-event-hint').innerText(), 'Codes for every event are accepted.');
    await s.keyboard.type(pickupCode);
    await s.keyboard.press('Enter');
    await result.getByText(/^Hand over .*Official T-shirt/).waitFor();
    assert.equal(await result.getAttribute('data-result'), 'ok');
    assert.deepEqual(sent.at(-1), { code: pickupCode });

    assert.deepEqual(await s.locator('#checkin-log li').evaluateAll((lis) => lis.map((li) => li.dataset.result)), ['ok', 'ok', 'wrong_event']);
    assert.deepEqual(answers, [409, 409, 200, 200]);

    // The buyer's ticket shows the one check-in that happened.
    await page.reload();
    await ticket.waitFor();
    assert.equal(await ticket.getAttribute('data-status'), 'checked_in');

    assert.deepEqual(unexpected(buyer.errors), []);
    assert.deepEqual(unexpected(staff.errors), []);
  });
});

test('the gate keeps its saved event when the event list fails to load or no longer lists it', async () => {
  await withVisitors(1, async ({ page, errors }) => {
    await signInAtGate(page);
    const picker = page.locator('#checkin-event');
    await picker.locator('option').nth(1).waitFor({ state: 'attached' });

    // A saved event that is not published (any more), and an event list that fails once.
    const gone = { id: '00000000-0000-4000-8000-000000000001', name: 'Konser Lama' };
    await page.evaluate((g) => localStorage.setItem('qc.checkin.event.v1', JSON.stringify(g)), gone);
    let failures = 1;
    await page.route('**/api/events?limit=100', (route) => {
      if (failures-- > 0) return route.fulfill({ status: 503, headers: { 'Retry-After': '1' }, json: { error: { code: 'unavailable', message: 'catalog is unavailable right now' } } });
      return route.continue();
    });
    await page.reload();
    await page.locator('#checkin-event-msg').getByText('Could not load the events.').waitFor();
    assert.equal(await picker.inputValue(), gone.id, 'still bound to the saved event');
    assert.equal(await picker.locator('option:checked').innerText(), 'Konser Lama');
    assert.ok((await page.locator('#checkin-event-hint').innerText()).includes('Only codes for Konser Lama'));

    // Loaded again: the saved event stays chosen, marked as not among the published events.
    await page.getByRole('button', { name: 'Load the events again' }).click();
    await picker.locator('option').filter({ hasText: DEMO_EVENT }).waitFor({ state: 'attached' });
    assert.equal(await picker.inputValue(), gone.id);
    assert.equal(await picker.locator('option:checked').innerText(), 'Konser Lama (not among the published events)');
    assert.equal(await page.locator('#checkin-event-msg').isVisible(), false);
    assert.equal(await page.getByRole('button', { name: 'Load the events again' }).isVisible(), false);

    // The refused list is logged by the browser as a failed resource; nothing else went wrong.
    assert.deepEqual(unexpected(errors), []);
  });
});

test('QRIS shows the code on the order page, polls the order, and "Continue payment" brings the same code back', async () => {
  await withVisitors(1, async ({ page, errors }) => {
    const orderId = await registerAndOrder(page, 'Bagus Pratama');
    const payments = [];
    page.on('request', (r) => {
      if (isPaymentRequest(orderId)(r)) payments.push(r);
    });

    await page.getByRole('button', { name: 'Pay with QRIS', exact: true }).click();
    const panel = page.locator('#qris-panel');
    await panel.waitFor();
    assertReadableQr(await svgFacts(panel.locator('#qris-code svg')), 'the QRIS code');
    assert.match(await panel.innerText(), /Scan with any QRIS app/);
    assert.match(await page.locator('#qris-amount').innerText(), /Rp 270\.000/);
    assert.match(await page.locator('#qris-expiry').innerText(), /expires at .+ WIB/);
    assert.equal(payments.length, 1);
    assert.deepEqual(payments[0].postDataJSON(), { method: 'qris' });
    const key = payments[0].headers()['idempotency-key'];
    assert.deepEqual(await page.evaluate((id) => JSON.parse(localStorage.getItem(`qc.pay.${id}`)), orderId), { key, method: 'qris' });

    // While the code is shown the page keeps asking whether the payment arrived.
    await page.waitForRequest((r) => r.method() === 'GET' && new URL(r.url()).pathname === `/api/orders/${orderId}`, { timeout: 6_000 });
    assert.equal(await page.locator('#order-status').getAttribute('data-status'), 'pending_payment');
    assert.equal(await page.locator('#payment-status').getAttribute('data-status'), 'pending');
    await screenshot(page, 'payment-qris');

    // After a reload the payment already started is offered again, not a second one.
    await page.reload();
    const resume = page.getByRole('button', { name: 'Continue payment', exact: true });
    await resume.waitFor();
    assert.equal(await page.getByRole('button', { name: 'Pay with QRIS', exact: true }).count(), 0);
    await resume.click();
    await page.locator('#qris-panel #qris-code svg').waitFor();
    assert.equal(payments.length, 1, 'continuing showed the kept code without asking for another payment');

    assert.deepEqual(errors, []);
  });
});
