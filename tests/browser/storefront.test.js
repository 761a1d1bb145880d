// Storefront, as a guest and then a new buyer: landing page → event → cart → sign-up → back to the cart.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';

import { apiCall, launchBrowser, newVisitor, screenshot, startGateway } from './lib/harness.js';

const DEMO_EVENT = 'Pesta Musik Kampus 2026';
const uniqueEmail = (who) => `${who}.${randomBytes(5).toString('hex')}@mahasiswa.ac.id`;

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

/** Name and remaining text of every product card in a list, in page order. */
async function products(page, listSelector) {
  return page.locator(`${listSelector} article.product`).evaluateAll((cards) =>
    cards.map((c) => ({ name: c.dataset.name, remaining: c.querySelector('.remaining')?.textContent })));
}

test('a guest browses, fills the cart, signs up from the cart and lands back on the same cart', async () => {
  const { context, page, errors } = await newVisitor(chrome.browser, gateway.baseURL);
  try {
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

    // Admitted: back on the cart, checkout itself is announced for the next release (no order is sent).
    await page.getByRole('link', { name: 'Go to your cart' }).click();
    await page.waitForURL(/\/cart\.html$/);
    await page.locator('#cart-table').waitFor();
    assert.match(await signedIn.innerText(), /Signed in as Siti Rahmawati — you have been admitted until \d{2}:\d{2} WIB/);
    await page.getByRole('button', { name: 'Continue to checkout' }).click();
    await signedIn.getByText('Admitted — checkout opens in the next release.').waitFor();
    assert.match(page.url(), /\/cart\.html$/);
    assert.deepEqual(orders, []);
    await screenshot(page, 'cart-admitted');

    // Changing a quantity updates the line and the total.
    await page.getByRole('button', { name: 'One more Festival' }).click();
    assert.equal(await page.locator('#cart-total').innerText(), 'Rp 420.000');

    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test('a double click on "Create account" sends exactly one registration request', async () => {
  const { context, page, errors } = await newVisitor(chrome.browser, gateway.baseURL);
  try {
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
  } finally {
    await context.close();
  }
});

test('the submit button is disabled while its request is in flight and the API errors are shown', async () => {
  const { context, page } = await newVisitor(chrome.browser, gateway.baseURL);
  try {
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
  } finally {
    await context.close();
  }
});

test('after sign-in only same-origin relative "next" paths are followed', async () => {
  const { context, page } = await newVisitor(chrome.browser, gateway.baseURL);
  try {
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
  } finally {
    await context.close();
  }
});
