// Storefront, as a guest and then a new buyer: landing page → event → cart → sign-up → back to the cart →
// queue → order → My orders → cancel; and an order that loses the race for the last ticket.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';

import { answerNextDialog, DEMO_EVENT, orderByApi, publishEvent, uniqueEmail } from './lib/fixtures.js';
import { apiCall, gateway, screenshot, useSite, withVisitors } from './lib/harness.js';

useSite();

/** Name and remaining text of every product card in a list, in page order. */
async function products(page, listSelector) {
  return page.locator(`${listSelector} article.product`).evaluateAll((cards) =>
    cards.map((c) => ({ name: c.dataset.name, remaining: c.querySelector('.remaining')?.textContent })));
}

test('a guest fills the cart, signs up, queues, places one order, sees it in My orders and cancels it', async () => {
  await withVisitors(1, async ({ page, errors }) => {
    // Landing page: the demo event with its price, stock and a WIB date; no login asked for.
    await page.goto('/');
    const card = page.locator('.event-card', { hasText: DEMO_EVENT });
    await card.waitFor();
    const cardText = await card.innerText();
    assert.match(cardText, /from\s*Rp 150\.000/, cardText);
    assert.match(cardText, /2\.900 tickets left/, cardText);
    assert.match(cardText, /\d{2}:\d{2} WIB/, cardText);
    assert.match(cardText, /Lapangan Rektorat/, cardText);
    await screenshot(page, 'landing');

    // Event page: three ticket categories and three merchandise items with what is left of each.
    await card.getByRole('link', { name: DEMO_EVENT }).click();
    await page.waitForURL(/\/event\.html\?id=[0-9a-f-]{36}$/);
    await page.locator('#ticket-list').waitFor();
    assert.equal(await page.locator('h1').innerText(), DEMO_EVENT);
    assert.deepEqual(await products(page, '#ticket-list'), [
      { name: 'Festival', remaining: '2.000 left' },
      { name: 'Tribun', remaining: '800 left' },
      { name: 'VIP', remaining: '100 left' },
    ]);
    assert.deepEqual(await products(page, '#merch-list'), [
      { name: 'Official T-shirt', remaining: '500 left' },
      { name: 'Tote bag', remaining: '300 left' },
      { name: 'Lightstick', remaining: '400 left' },
    ]);
    assert.equal(await page.locator('.schedule-list li').count(), 2);

    // Pickers stop at max_per_order (VIP: 2), however often "+" is pressed.
    const vipMore = page.getByRole('button', { name: 'One more VIP' });
    for (let i = 0; i < 4; i++) if (await vipMore.isEnabled()) await vipMore.click();
    assert.equal(await page.getByLabel('Quantity of VIP').inputValue(), '2');
    assert.equal(await vipMore.isDisabled(), true);
    await page.getByRole('button', { name: 'One fewer VIP' }).click();
    await page.getByRole('button', { name: 'One fewer VIP' }).click();
    assert.equal(await page.getByLabel('Quantity of VIP').inputValue(), '0');

    await page.getByRole('button', { name: 'One more Festival' }).click();
    await page.getByRole('button', { name: 'One more Official T-shirt' }).click();
    assert.equal(await page.locator('#selection-total').innerText(), 'Rp 270.000');
    await screenshot(page, 'event');
    await page.getByRole('button', { name: 'Add to cart' }).click();
    await page.getByText('Added to your cart.').waitFor();

    // Cart: both lines, line totals and the total.
    await page.getByRole('link', { name: 'View cart (2)' }).click();
    await page.waitForURL(/\/cart\.html$/);
    await page.locator('#cart-table').waitFor();
    const lines = async () => page.locator('#cart-table tbody tr').evaluateAll((rows) =>
      rows.map((r) => ({ name: r.dataset.name, qty: r.querySelector('input').value, total: r.querySelector('.line-total').textContent })));
    const expected = [
      { name: 'Festival', qty: '1', total: 'Rp 150.000' },
      { name: 'Official T-shirt', qty: '1', total: 'Rp 120.000' },
    ];
    assert.deepEqual(await lines(), expected);
    assert.equal(await page.locator('#cart-total').innerText(), 'Rp 270.000');
    await screenshot(page, 'cart');

    // A guest who continues to checkout is sent to sign in, with the cart as the way back.
    await page.getByRole('button', { name: 'Continue to checkout' }).click();
    await page.waitForURL(/\/login\.html\?next=cart\.html$/);

    const name = 'Siti Rahmawati';
    await page.locator('#register-name').fill(name);
    await page.locator('#register-email').fill(uniqueEmail('siti'));
    await page.locator('#register-password').fill('konser-malam-2026');
    await page.getByRole('button', { name: 'Create account' }).click();

    // Straight back to the cart, with the cart as it was.
    await page.waitForURL(/\/cart\.html$/);
    await page.locator('#cart-table').waitFor();
    assert.deepEqual(await lines(), expected);
    assert.equal(await page.locator('#cart-total').innerText(), 'Rp 270.000');
    const signedIn = page.locator('#checkout-msg');
    await signedIn.waitFor();
    assert.match(await signedIn.innerText(), new RegExp(`Signed in as ${name} — checkout opens when the sale's waiting room admits you`));

    // Signed in but not yet admitted: the button checks the session with the server, then sends the buyer
    // to the event's waiting room.
    const orders = [];
    page.on('request', (r) => {
      if (new URL(r.url()).pathname.startsWith('/api/orders')) orders.push(r.url());
    });
    const me = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/me');
    await page.getByRole('button', { name: 'Continue to checkout' }).click();
    assert.equal((await me).status(), 200);
    await page.waitForURL(/\/queue\.html\?event=[0-9a-f-]{36}$/);
    await page.locator('#queue-admitted').getByRole('heading', { name: "It's your turn!" }).waitFor({ timeout: 20_000 });
    assert.equal(await page.getByRole('link', { name: 'Go to your cart' }).isVisible(), true);
    assert.equal(await page.locator('#choose-tickets').isHidden(), true, 'the cart already holds this event');

    // Admitted: back on the cart, the button now places the order.
    await page.getByRole('link', { name: 'Go to your cart' }).click();
    await page.waitForURL(/\/cart\.html$/);
    await page.locator('#cart-table').waitFor();
    assert.match(await signedIn.innerText(), /Signed in as Siti Rahmawati — you have been admitted until \d{2}:\d{2} WIB/);
    assert.deepEqual(orders, []);

    // Changing a quantity updates the line and the total (and back again).
    await page.getByRole('button', { name: 'One more Festival' }).click();
    assert.equal(await page.locator('#cart-total').innerText(), 'Rp 420.000');
    await page.getByRole('button', { name: 'One fewer Festival' }).click();
    assert.equal(await page.locator('#cart-total').innerText(), 'Rp 270.000');
    await screenshot(page, 'cart-admitted');

    // A double click on "Place order" sends exactly one order, which is confirmed and opened.
    const placed = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && new URL(r.url()).pathname === '/api/orders') placed.push(r);
    });
    await page.getByRole('button', { name: 'Place order' }).dblclick();
    await page.waitForURL(/\/order\.html\?id=[0-9a-f-]{36}$/);
    assert.equal(placed.length, 1, `sent ${placed.length} order requests`);
    const sent = placed[0].headers();
    assert.match(sent['idempotency-key'] || '', /^[0-9a-f-]{16,}$/);
    assert.ok(sent['admission-token'] && sent['visitor-token'] && /^Bearer /.test(sent.authorization));
    assert.deepEqual(placed[0].postDataJSON().items.map((i) => i.quantity), [1, 1]);
    const orderId = new URL(page.url()).searchParams.get('id');

    // The order: status, lines, total and the time left to pay.
    const status = page.locator('#order-status');
    await status.waitFor();
    assert.equal(await status.innerText(), 'Pending payment');
    assert.equal(await page.locator('#order-total').innerText(), 'Rp 270.000');
    assert.deepEqual(await page.locator('#order-table tbody tr').evaluateAll((rows) =>
      rows.map((r) => [...r.querySelectorAll('td')].map((td) => [...td.childNodes].map((n) => n.textContent.trim()).join(' ')))), [
      ['Ticket Festival', '1', 'Rp 150.000', 'Rp 150.000'],
      ['Merchandise Official T-shirt', '1', 'Rp 120.000', 'Rp 120.000'],
    ]);
    assert.match(await page.locator('#order-countdown').innerText(), /^Pay within 1[45]:\d{2} to keep these tickets\.$/);
    // Both ways to pay are offered; this test does not pay (payment.test.js does).
    assert.equal(await page.getByRole('button', { name: 'Pay with Snap (cards, e-wallets, QRIS, VA)' }).isEnabled(), true);
    assert.equal(await page.getByRole('button', { name: 'Pay with QRIS' }).isEnabled(), true);
    assert.equal(await page.locator('.site-header .badge').count(), 0, 'the cart was emptied');
    await screenshot(page, 'order');

    // My orders lists it, linking back to it.
    await page.locator('.site-header').getByRole('link', { name: 'My orders' }).click();
    await page.waitForURL(/\/orders\.html$/);
    const row = page.locator(`#orders-table tr[data-order-id="${orderId}"]`);
    await row.waitFor();
    assert.match(await row.innerText(), /1 × Festival, 1 × Official T-shirt[\s\S]*Rp 270\.000[\s\S]*Pending payment/);
    await row.getByRole('link').click();
    await page.waitForURL(new RegExp(`/order\\.html\\?id=${orderId}$`));

    // Cancelling asks first, then shows the cancelled order without a countdown.
    const dialogs = [];
    answerNextDialog(page, dialogs, true);
    await page.getByRole('button', { name: 'Cancel order' }).click();
    await page.locator('#order-status[data-status="cancelled"]').waitFor();
    assert.equal(await status.innerText(), 'Cancelled');
    assert.match(dialogs[0] || '', /Cancel this order\?/);
    assert.match(await page.locator('#order-state').innerText(), /cancelled/);
    assert.equal(await page.locator('#order-countdown').count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Cancel order' }).count(), 0);
    await page.locator('.site-header').getByRole('link', { name: 'My orders' }).click();
    await row.waitFor();
    assert.match(await row.innerText(), /Cancelled/);
    assert.equal(placed.length, 1);

    assert.deepEqual(errors, []);
  });
});

test('a double click on "Create account" sends exactly one registration request', async () => {
  await withVisitors(1, async ({ page, errors }) => {
    const registrations = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && new URL(r.url()).pathname === '/api/auth/register') registrations.push(r);
    });
    await page.goto('/login.html?next=index.html');
    await page.locator('#register-name').fill('Budi Santoso');
    await page.locator('#register-email').fill(uniqueEmail('budi'));
    await page.locator('#register-password').fill('gitar-akustik-77');
    await page.getByRole('button', { name: 'Create account' }).dblclick();
    await page.waitForURL(/\/index\.html$/);
    await page.locator('.event-card').first().waitFor();
    assert.equal(registrations.length, 1, `sent ${registrations.length} registration requests`);
    assert.deepEqual(errors, []);
  });
});

test('the submit button is disabled while its request is in flight and the API errors are shown', async () => {
  await withVisitors(1, async ({ page }) => {
    const taken = uniqueEmail('rina');
    const made = await apiCall(gateway.baseURL, 'POST', '/api/auth/register', {
      body: { email: taken, password: 'angklung-merdu-1', name: 'Rina' },
    });
    assert.equal(made.status, 201);

    // Hold the registration request until the test has looked at the button.
    let release;
    const held = new Promise((resolve) => { release = resolve; });
    let arrived;
    const arrival = new Promise((resolve) => { arrived = resolve; });
    await page.route('**/api/auth/register', async (route) => {
      arrived();
      await held;
      await route.continue();
    });

    await page.goto('/login.html');
    const button = page.getByRole('button', { name: 'Create account' });
    await page.locator('#register-name').fill('Rina Kedua');
    await page.locator('#register-email').fill(taken);
    await page.locator('#register-password').fill('angklung-merdu-2');
    await button.click();
    await arrival;
    assert.equal(await button.isDisabled(), true, 'disabled while the request is in flight');
    release();

    // 409 email_taken: the API's message, and the button usable again.
    const msg = page.locator('#register-msg');
    await msg.getByText('An account with this email already exists').waitFor();
    await page.waitForFunction(() => !document.querySelector('#register-form button[type=submit]').disabled);
    await page.unroute('**/api/auth/register');

    // 422 validation from the API (a password of one repeated character).
    await page.locator('#register-email').fill(uniqueEmail('rina'));
    await page.locator('#register-password').fill('zzzzzzzzzz');
    await button.click();
    await msg.getByText('Password must not repeat a single character').waitFor();
    assert.equal(await button.isEnabled(), true);

    // 401 on a wrong password, shown on the sign-in form.
    await page.locator('#login-email').fill(taken);
    await page.locator('#login-password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#login-msg').getByText('Invalid email or password').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Sign in' }).isEnabled(), true);
  });
});

test('after sign-in only same-origin relative "next" paths are followed', async () => {
  await withVisitors(1, async ({ page }) => {
    await page.goto('/login.html');
    const verdicts = await page.evaluate(async () => {
      const { safeNext } = await import('/js/api.js');
      const cases = ['cart.html', '/admin.html', 'event.html?id=1#x', 'https://evil.example/', '//evil.example/x',
        '/\\evil.example', 'javascript:alert(1)', ' data:text/html,hi', 'http://127.0.0.1:1/x', 'login.html'];
      return Object.fromEntries(cases.map((c) => [c, safeNext(c, 'FALLBACK')]));
    });
    assert.deepEqual(verdicts, {
      'cart.html': '/cart.html',
      '/admin.html': '/admin.html',
      'event.html?id=1#x': '/event.html?id=1#x',
      'https://evil.example/': 'FALLBACK',
      '//evil.example/x': 'FALLBACK',
      '/\\evil.example': 'FALLBACK',
      'javascript:alert(1)': 'FALLBACK',
      ' data:text/html,hi': 'FALLBACK',
      'http://127.0.0.1:1/x': 'FALLBACK',
      'login.html': 'FALLBACK',
    });

    // And end to end: an off-site next leads to the events page of this site.
    const email = uniqueEmail('dewi');
    assert.equal((await apiCall(gateway.baseURL, 'POST', '/api/auth/register', {
      body: { email, password: 'gamelan-jawa-9', name: 'Dewi' },
    })).status, 201);
    await page.goto('/login.html?next=' + encodeURIComponent('//evil.example/steal'));
    await page.locator('#login-email').fill(email);
    await page.locator('#login-password').fill('gamelan-jawa-9');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${gateway.baseURL}/index.html`);
  });
});

// ---- the last ticket ------------------------------------------------------------------------------

test('a buyer whose last ticket was bought by someone else meanwhile is told it sold out', async () => {
  const name = `Malam Terakhir ${randomBytes(3).toString('hex')}`;
  const { id: eventId, categoryId } = await publishEvent(gateway, { event: { name }, category: { name: 'Terakhir', price: 75_000, quota: 1, max_per_order: 1 } });
  await withVisitors(1, async ({ page, errors }) => {
    // The second buyer puts the last ticket in the cart, signs up, queues and is admitted.
    await page.goto(`/event.html?id=${eventId}`);
    await page.locator('#ticket-list').waitFor();
    await page.getByRole('button', { name: 'One more Terakhir' }).click();
    await page.getByRole('button', { name: 'Add to cart' }).click();
    await page.getByText('Added to your cart.').waitFor();
    await page.goto('/cart.html');
    await page.getByRole('button', { name: 'Continue to checkout' }).click();
    await page.waitForURL(/\/login\.html\?next=cart\.html$/);
    await page.locator('#register-name').fill('Agus Lambat');
    await page.locator('#register-email').fill(uniqueEmail('agus'));
    await page.locator('#register-password').fill('tiket-terakhir-2');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL(/\/cart\.html$/);
    await page.getByRole('button', { name: 'Continue to checkout' }).click();
    await page.waitForURL(/\/queue\.html\?event=[0-9a-f-]{36}$/);
    await page.locator('#queue-admitted').getByRole('heading', { name: "It's your turn!" }).waitFor({ timeout: 20_000 });
    await page.getByRole('link', { name: 'Go to your cart' }).click();
    await page.waitForURL(/\/cart\.html$/);
    const place = page.getByRole('button', { name: 'Place order' });
    await place.waitFor();

    // Meanwhile someone else buys the only ticket.
    const { answer: first } = await orderByApi(gateway, eventId, [{ ticket_category_id: categoryId, quantity: 1 }]);
    assert.equal(first.status, 'confirmed', JSON.stringify(first));

    // Checkout is at capacity on the first try: the page waits Retry-After and resends the same key once.
    const posts = [];
    let refused = 0;
    await page.route('**/api/orders', async (route) => {
      if (route.request().method() !== 'POST') return route.continue();
      posts.push(route.request().headers()['idempotency-key']);
      if (refused++ === 0) {
        return route.fulfill({
          status: 503,
          headers: { 'Retry-After': '1', 'Content-Type': 'application/json' },
          body: JSON.stringify({ error: { code: 'unavailable', message: 'checkout is at capacity' } }),
        });
      }
      return route.continue();
    });
    await place.click();
    const msg = page.locator('#order-msg');
    await msg.getByText('Checkout is busy right now. Trying again in 1 second').waitFor();
    await msg.getByText('Sold out while you were checking out').waitFor({ timeout: 20_000 });
    assert.equal(posts.length, 2, `sent ${posts.length} order requests`);
    assert.ok(posts[0] && posts[0] === posts[1], 'the retry reuses the Idempotency-Key');
    assert.equal(await place.isEnabled(), true, 'the buyer may try again');
    assert.match(page.url(), /\/cart\.html$/);
    await screenshot(page, 'cart-sold-out');
    // No order on this buyer's account.
    await page.locator('.site-header').getByRole('link', { name: 'My orders' }).click();
    await page.getByRole('heading', { name: 'No orders yet' }).waitFor();
    // The browser logs the refused orders (503, 409 sold_out) as failed resources; nothing else may fail.
    assert.deepEqual(errors.filter((e) => !/status of (409 \(Conflict\)|503 \(Service Unavailable\))/.test(e)), []);
  });
});
