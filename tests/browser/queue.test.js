// The virtual waiting room in the browser: joining from the event page, admission, reload, the transport
// fallbacks (WebSocket → Server-Sent Events → polling), pausing from the admin console, the pre-sale draw,
// and the embeddable widget (same origin and embedded on another site).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { after, test } from 'node:test';

import { adminToken, DEMO_EVENT, publishEvent, roomSettings, signInToConsole } from './lib/fixtures.js';
import { apiCall, gateway, screenshot, useSite, withVisitors } from './lib/harness.js';

const ADMITTED_WITHIN = 20_000;

let host; // another site that embeds widget.js
let demo; // the demo event from GET /api/events

useSite(async () => {
  host = await startHostSite();
  return { extraEnv: { CORS_ORIGINS: `http://127.0.0.1,${host.origin}` } };
}, {
  async ready() {
    const events = await apiCall(gateway.baseURL, 'GET', '/api/events');
    demo = events.body.find((e) => e.name === DEMO_EVENT);
    assert.ok(demo, 'the demo event is published');
  },
});
after(async () => {
  await host?.close();
});

// ---- helpers -------------------------------------------------------------------------------------

/** A published event of its own (one ticket category), so a test can pause it or open its sale later; its id. */
async function createEvent({ saleOpensAt, room } = {}) {
  const event = { name: `Malam Akustik ${randomBytes(3).toString('hex')}`, venue: 'Aula Timur', ...(saleOpensAt ? { sale_opens_at: saleOpensAt } : {}) };
  return (await publishEvent(gateway, { event, room, daysAhead: 40 })).id;
}

const isJoin = (r) => r.request().method() === 'POST' && /^\/api\/events\/[0-9a-f-]{36}\/queue$/.test(new URL(r.url()).pathname);

/** The visitor id inside a visitor credential (the JWT's `sub`). */
function visitorOf(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sub;
}

/** Records every value #queue-position shows, however briefly (admission can follow a join within a tick). */
async function recordPositions(page) {
  await page.addInitScript(() => {
    window.__qcPositions = [];
    new MutationObserver(() => {
      const node = document.getElementById('queue-position');
      const text = node && !node.closest('[hidden]') ? node.textContent : null;
      if (text && text !== '—' && window.__qcPositions.at(-1) !== text) window.__qcPositions.push(text);
    }).observe(document, { subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['hidden'] });
  });
}

/** Makes the page believe the browser has no WebSocket (and/or EventSource). */
async function withoutApis(page, names) {
  await page.addInitScript((list) => {
    for (const name of list) {
      try {
        delete window[name];
      } catch {
        /* not configurable */
      }
      if (typeof window[name] === 'function') Object.defineProperty(window, name, { value: undefined, configurable: true, writable: true });
    }
  }, names);
}

async function waitAdmitted(page) {
  await page.locator('#queue-admitted').getByRole('heading', { name: "It's your turn!" }).waitFor({ timeout: ADMITTED_WITHIN });
}

async function connection(page) {
  return page.locator('#queue-connection').evaluate((e) => ({ ...e.dataset }));
}

async function stored(page, eventId) {
  return page.evaluate((id) => ({
    visitor: JSON.parse(sessionStorage.getItem(`qc.queue.v1.${id}`) || 'null'),
    admission: JSON.parse(sessionStorage.getItem(`qc.admission.v1.${id}`) || 'null'),
  }), eventId);
}

/** A tiny web server on another origin (localhost instead of 127.0.0.1) that embeds the widget. */
async function startHostSite() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    if (url.pathname !== '/') {
      res.writeHead(url.pathname === '/favicon.ico' ? 204 : 404).end();
      return;
    }
    const api = gateway.baseURL;
    const eventId = url.searchParams.get('event') || '';
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html lang="id"><head><meta charset="utf-8"><title>UKM Musik</title>
<style>body{font-family:serif;background:#123;color:#eee} p{color:lime;font-size:30px} button{background:lime}</style></head>
<body><h1>UKM Musik Universitas Nusantara</h1><p>Beli tiket lewat antrean di bawah.</p>
<script src="${api}/widget.js" data-event="${eventId}" data-api="${api}"></script>
<p>Setelah widget.</p></body></html>`);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    origin: `http://localhost:${port}`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

// ---- tests ---------------------------------------------------------------------------------------

test('a guest joins the queue from the event page, sees a position, is admitted, and a reload keeps the visitor', async () => {
  await withVisitors(1, async ({ page, errors }) => {
    await recordPositions(page);
    const sockets = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));

    await page.goto(`/event.html?id=${demo.id}`);
    const joinLink = page.getByRole('link', { name: 'Join the queue' });
    await joinLink.waitFor();
    assert.equal(await joinLink.getAttribute('href'), `queue.html?event=${demo.id}`);
    await screenshot(page, 'event-join-queue');

    const joined = page.waitForResponse(isJoin);
    await joinLink.click();
    await page.waitForURL(/\/queue\.html\?event=[0-9a-f-]{36}$/);
    const first = await (await joined).json();
    assert.equal(first.status, 'waiting', JSON.stringify(first));
    assert.ok(first.position >= 1, `position ${first.position}`);
    assert.equal(first.people_ahead, first.position - 1);

    await waitAdmitted(page);
    const shown = await page.evaluate(() => window.__qcPositions);
    assert.ok(shown.includes(String(first.position)), `the page showed position ${first.position} (it showed ${JSON.stringify(shown)})`);
    assert.match(await page.locator('#admitted-countdown').innerText(), /^(10:00|9:[0-5]\d)$/);
    assert.match(await page.locator('#admitted-until').innerText(), /until \d{2}:\d{2} WIB/);
    assert.equal(await page.getByRole('link', { name: /Go to your cart/ }).getAttribute('href'), 'cart.html');
    assert.match(await page.locator('#queue-announcer').textContent(), /It's your turn/);

    // Delivered over a WebSocket, which is closed once the turn has come.
    const conn = await connection(page);
    assert.equal(conn.lastTransport, 'websocket');
    assert.equal(conn.phase, 'stopped');
    assert.ok(sockets.some((u) => u.includes(`/api/events/${demo.id}/queue/ws?visitor_token=`)), sockets.join(' '));

    // The tab keeps the visitor credential and the admission (with its expiry).
    const kept = await stored(page, demo.id);
    assert.equal(kept.visitor.visitor_token, first.visitor_token);
    assert.ok(kept.admission.admission_token.split('.').length === 3);
    assert.ok(Date.parse(kept.admission.expires_at) > Date.now() + 500_000, kept.admission.expires_at);

    // Live stock, named from the catalogue.
    const stock = await page.locator('#queue-stock li[data-stock-id]').evaluateAll((rows) =>
      rows.map((r) => `${r.dataset.name}: ${r.querySelector('.stock-left').textContent}`));
    assert.deepEqual(stock, ['Festival: 2.000 left', 'Tribun: 800 left', 'VIP: 100 left',
      'Official T-shirt: 500 left', 'Tote bag: 300 left', 'Lightstick: 400 left']);
    await screenshot(page, 'queue-admitted');

    // Reload: the join sends the same credential and the server still knows the visitor as admitted.
    const rejoinRequest = page.waitForRequest((r) => r.method() === 'POST' && /\/queue$/.test(new URL(r.url()).pathname));
    const rejoined = page.waitForResponse(isJoin);
    await page.reload();
    assert.equal(new URL((await rejoinRequest).url()).searchParams.get('visitor_token'), first.visitor_token);
    const second = await (await rejoined).json();
    assert.equal(second.status, 'admitted', JSON.stringify(second));
    assert.equal(visitorOf(second.visitor_token), visitorOf(first.visitor_token), 'same visitor after the reload');
    await waitAdmitted(page);
    const status = await apiCall(gateway.baseURL, 'GET', `/api/events/${demo.id}/queue/status?visitor_token=${encodeURIComponent(second.visitor_token)}`);
    assert.equal(status.body.status, 'admitted');

    assert.deepEqual(errors, []);
  });
});

test('without WebSocket the page reaches its turn over Server-Sent Events, and without both by polling', async () => {
  // No WebSocket constructor: Server-Sent Events.
  await withVisitors(2, async (sse, poll) => {
    await withoutApis(sse.page, ['WebSocket']);
    const sockets = [];
    const streams = [];
    sse.page.on('websocket', (ws) => sockets.push(ws.url()));
    sse.page.on('request', (r) => {
      if (new URL(r.url()).pathname.endsWith('/queue/sse')) streams.push(r.url());
    });
    await sse.page.goto(`/queue.html?event=${demo.id}`);
    assert.equal(await sse.page.evaluate(() => typeof window.WebSocket), 'undefined');
    await waitAdmitted(sse.page);
    const viaSse = await connection(sse.page);
    assert.equal(viaSse.lastTransport, 'sse', JSON.stringify(viaSse));
    assert.equal(viaSse.transportsUsed, 'sse');
    assert.deepEqual(sockets, []);
    assert.ok(streams.length >= 1);
    assert.ok((await stored(sse.page, demo.id)).admission);
    await screenshot(sse.page, 'queue-admitted-sse');
    assert.deepEqual(sse.errors, []);

    // Neither WebSocket nor EventSource: GET …/queue/status every 2 s.
    await withoutApis(poll.page, ['WebSocket', 'EventSource']);
    const polls = [];
    const pushes = [];
    poll.page.on('request', (r) => {
      const p = new URL(r.url()).pathname;
      if (p.endsWith('/queue/status')) polls.push(r.url());
      if (p.endsWith('/queue/sse') || p.endsWith('/queue/ws')) pushes.push(r.url());
    });
    await poll.page.goto(`/queue.html?event=${demo.id}`);
    await waitAdmitted(poll.page);
    const viaPolling = await connection(poll.page);
    assert.equal(viaPolling.lastTransport, 'polling', JSON.stringify(viaPolling));
    assert.ok(polls.length >= 1);
    assert.deepEqual(pushes, []);
    assert.ok((await stored(poll.page, demo.id)).admission);
    // Once admitted, polling stops.
    const count = polls.length;
    await poll.page.waitForTimeout(2500);
    assert.equal(polls.length, count, 'no more polling after the turn came');
    await screenshot(poll.page, 'queue-admitted-polling');
    assert.deepEqual(poll.errors, []);
  });
});

test('a WebSocket that cannot connect gives way to Server-Sent Events; one channel at a time', async () => {
  // Its own event, paused, so the visitor is still waiting while the page finds a working transport.
  const eventId = await createEvent({ room: { paused: true } });
  await withVisitors(1, async ({ page, errors }) => {
    let wsAttempts = 0;
    await page.routeWebSocket(/\/queue\/ws/, (ws) => {
      wsAttempts += 1;
      ws.close({ code: 1011, reason: 'blocked by a test proxy' });
    });
    const open = new Set();
    let most = 0;
    page.on('request', (r) => {
      if (!new URL(r.url()).pathname.endsWith('/queue/sse')) return;
      open.add(r);
      most = Math.max(most, open.size);
    });
    page.on('requestfailed', (r) => open.delete(r));
    page.on('requestfinished', (r) => open.delete(r));

    await page.goto(`/queue.html?event=${eventId}`);
    await page.locator('#queue-connection[data-transport="sse"][data-phase="live"]').waitFor({ timeout: 15_000 });
    assert.equal(wsAttempts, 2, 'two WebSocket attempts before falling back');
    assert.equal(await page.locator('#queue').getAttribute('data-state'), 'waiting');
    assert.equal(await page.locator('#queue-paused').isVisible(), true);

    await roomSettings(gateway, eventId, { paused: false });
    await waitAdmitted(page);
    assert.equal((await connection(page)).lastTransport, 'sse');
    assert.equal(most, 1, 'never more than one event stream at a time');
    assert.equal(wsAttempts, 2);
    assert.deepEqual(errors, []);
  });
});

test('an admin pauses the waiting room from the live panel; a new visitor waits paused and is admitted on resume', async () => {
  await withVisitors(2, async (admin, visitor) => {
    const a = admin.page;
    await signInToConsole(a, gateway, `#event/${demo.id}`);
    const panel = a.locator('#room-live');
    await panel.waitFor();
    await a.locator('#room-state').getByText('Admitting').waitFor();
    assert.equal(await panel.locator('[data-stat="rate"] b').innerText(), '50');
    // The visitors admitted by the earlier tests of this file hold places among the active buyers.
    assert.match(await panel.locator('[data-stat="active"] b').innerText(), /^[1-9]\d* \/ 2\.000$/);

    // Pause.
    await a.getByRole('button', { name: 'Pause admissions' }).click();
    await a.locator('#room-live-msg').getByText('Admissions paused').waitFor();
    await a.locator('#room-state').getByText('Admissions paused').waitFor();
    await a.getByRole('button', { name: 'Resume admissions' }).waitFor();
    const settings = await apiCall(gateway.baseURL, 'GET', `/api/admin/events/${demo.id}/waiting-room`, { token: await adminToken(gateway) });
    assert.equal(settings.body.paused, true);
    assert.equal(await a.locator('#wr-paused').isChecked(), true, 'the settings form follows the live panel');

    // A new visitor: in line, told the queue is paused, and not admitted.
    const v = visitor.page;
    const joined = v.waitForResponse(isJoin);
    await v.goto(`/queue.html?event=${demo.id}`);
    const first = await (await joined).json();
    assert.equal(first.status, 'waiting');
    await v.locator('#queue-paused').getByText('Admissions are paused.').waitFor();
    assert.equal(await v.locator('#queue-position').innerText(), String(first.position));
    assert.equal(await v.locator('#queue-eta').innerText(), 'Paused');
    await v.waitForTimeout(3000); // six controller ticks
    assert.equal(await v.locator('#queue').getAttribute('data-state'), 'waiting');
    assert.equal((await stored(v, demo.id)).admission, null);
    await screenshot(v, 'queue-paused');

    // The admin sees the visitor waiting.
    await panel.locator('[data-stat="waiting"] b', { hasText: /^[1-9]/ }).waitFor();
    await screenshot(a, 'admin-live-room');

    // A reload keeps the place: same credential, same position.
    const again = v.waitForResponse(isJoin);
    await v.reload();
    const reloaded = await (await again).json();
    assert.equal(new URL((await again).url()).searchParams.get('visitor_token'), first.visitor_token);
    assert.equal(reloaded.status, 'waiting');
    assert.equal(reloaded.position, first.position);
    assert.equal(visitorOf(reloaded.visitor_token), visitorOf(first.visitor_token));
    await v.locator('#queue-paused').getByText('Admissions are paused.').waitFor();

    // The admission rate, from the panel: previewed while typed, then set.
    await a.getByLabel('Admission rate (per second)').fill('20');
    await a.locator('#room-preview', { hasText: /^Preview: admission is paused; once resumed, at 20\/s the queue of [1-9]\d* clears in about \d+ s; the \d+ tickets/ }).waitFor();
    assert.match(await a.locator('#room-preview').innerText(), /checkout backlog \d+ of 20000\./);
    await a.locator('#room-rate-form').getByRole('button', { name: 'Set rate' }).click();
    await a.locator('#room-live-msg').getByText('Admission rate set to 20 per second.').waitFor();
    await panel.locator('[data-stat="rate"] b', { hasText: /^20$/ }).waitFor();
    const rate = await apiCall(gateway.baseURL, 'GET', `/api/admin/events/${demo.id}/waiting-room`, { token: await adminToken(gateway) });
    assert.equal(rate.body.admission_rate_per_sec, 20);
    assert.equal(rate.body.paused, true, 'changing the rate leaves the pause alone');

    // Resume: the visitor's turn comes.
    await a.getByRole('button', { name: 'Resume admissions' }).click();
    await a.locator('#room-live-msg').getByText('Admissions resumed.').waitFor();
    await waitAdmitted(v);
    await a.locator('#room-state').getByText('Admitting').waitFor();
    await panel.locator('[data-stat="waiting"] b', { hasText: /^0$/ }).waitFor();
    // After the change: the admissions counted since, against the preview's line.
    const chart = a.locator('#room-chart svg');
    await chart.waitFor();
    assert.match(await chart.getAttribute('aria-label'), /^Admitted since the change: [1-9]\d* actual, \d+ previewed$/);

    await roomSettings(gateway, demo.id, { admission_rate_per_sec: 50 });
    assert.deepEqual(admin.errors, []);
    assert.deepEqual(visitor.errors, []);
  });
});

test('before the sale opens the visitor waits for the draw with the published seed hash, then gets a place and its turn', async () => {
  const opensAt = new Date(Date.now() + 12_000);
  const eventId = await createEvent({ saleOpensAt: opensAt.toISOString() });
  await withVisitors(1, async ({ page, errors }) => {
    const joined = page.waitForResponse(isJoin);
    await page.goto(`/queue.html?event=${eventId}`);
    const first = await (await joined).json();
    assert.equal(first.status, 'pre_queue', JSON.stringify(first));
    assert.equal(first.position, null);
    await page.locator('#queue-prequeue').getByRole('heading', { name: 'The sale has not opened yet' }).waitFor();
    await page.locator('#fairness').waitFor();
    assert.match(await page.locator('#seed-hash').innerText(), /^[0-9a-f]{64}$/);
    assert.match(await page.locator('#prequeue-countdown').innerText(), /^0:(0\d|1[0-2])$/);
    await page.locator('#prequeue-count', { hasText: '1 person is waiting for the draw.' }).waitFor();
    await screenshot(page, 'queue-prequeue');
    assert.ok(Date.now() < opensAt.getTime(), 'the pre-queue was seen before the opening');

    await waitAdmitted(page);
    assert.equal((await connection(page)).lastTransport, 'websocket');
    assert.deepEqual(errors, []);
  });
});

test('the embeddable widget on widget-demo.html reaches its turn and hands the visitor to the storefront', async () => {
  await withVisitors(1, async ({ page, errors }) => {
    await page.goto('/widget-demo.html');
    const widget = page.locator('#queue-checkout-widget');
    await widget.getByText(DEMO_EVENT).waitFor();
    assert.match(await page.locator('#demo-snippet').innerText(), new RegExp(`data-event="${demo.id}"`));
    // Scoped: a shadow root, and no style element or adopted sheet added to the page itself.
    assert.equal(await widget.evaluate((n) => !!n.shadowRoot), true);
    assert.deepEqual(await page.evaluate(() => [document.querySelectorAll('style').length, document.adoptedStyleSheets.length]), [0, 0]);

    const joined = page.waitForResponse(isJoin);
    await widget.getByRole('button', { name: 'Join the queue' }).click();
    const first = await (await joined).json();
    assert.equal(first.status, 'waiting');
    await widget.locator('.box[data-state="admitted"]').waitFor({ timeout: ADMITTED_WITHIN });
    assert.match(await widget.locator('.ok').innerText(), /It’s your turn!/);
    assert.equal(await widget.locator('.conn').getAttribute('data-last-transport'), 'websocket');
    const stock = await widget.locator('.stock li').allInnerTexts();
    assert.ok(stock.some((t) => /Festival\s+2\.000 left/.test(t)), stock.join(' | '));
    // The widget's own styles apply inside it only.
    assert.equal(await widget.locator('.ok').evaluate((n) => getComputedStyle(n).color), 'rgb(15, 118, 110)');
    await screenshot(page, 'widget-demo');

    // "Continue to checkout" opens the storefront's queue page as the same visitor, who is admitted there.
    const handedOver = page.waitForResponse(isJoin);
    await widget.getByRole('link', { name: 'Continue to checkout' }).click();
    await page.waitForURL(/\/queue\.html\?event=[0-9a-f-]{36}$/);
    const there = await (await handedOver).json();
    assert.equal(there.status, 'admitted');
    assert.equal(visitorOf(there.visitor_token), visitorOf(first.visitor_token));
    await waitAdmitted(page);
    assert.deepEqual(errors, []);
  });
});

test('the widget embedded on another site (cross-origin) reaches its turn without touching the page styles', async () => {
  await withVisitors(1, async ({ page, errors }) => {
    await page.goto(`${host.origin}/?event=${demo.id}`);
    const box = page.locator('.queue-checkout-widget');
    await box.getByText(DEMO_EVENT).waitFor();
    // Placed right after the script tag, as there is no #queue-checkout-widget on this page.
    assert.equal(await page.evaluate(() => document.querySelector('script[data-event]').nextElementSibling.className), 'queue-checkout-widget');
    await box.getByRole('button', { name: 'Join the queue' }).click();
    await box.locator('.box[data-state="admitted"]').waitFor({ timeout: ADMITTED_WITHIN });
    // The host page's "p { color: lime; font-size: 30px }" does not reach into the box.
    const inside = await box.locator('.ok').evaluate((n) => [getComputedStyle(n).color, getComputedStyle(n).fontSize]);
    assert.deepEqual(inside, ['rgb(15, 118, 110)', '19.5px']);
    const link = await box.getByRole('link', { name: 'Continue to checkout' }).getAttribute('href');
    assert.ok(link.startsWith(`${gateway.baseURL}/queue.html?event=${demo.id}#visitor_token=`), link);
    await screenshot(page, 'widget-cross-origin');
    assert.deepEqual(errors, []);
  });
});

test('a visitor away too long is told its place lapsed and can join again', async () => {
  const eventId = await createEvent({ room: { paused: true, presence_grace_secs: 10 } });
  await withVisitors(1, async ({ page, errors }) => {
    // A switch between the page and the gateway: while "away", every queue connection fails.
    let away = false;
    const sockets = [];
    await page.routeWebSocket(/\/queue\/ws/, (ws) => {
      if (away) {
        ws.close({ code: 1006, reason: 'away' });
        return;
      }
      sockets.push([ws, ws.connectToServer()]);
    });
    await page.route(/\/queue\/(sse|status)/, (route) => (away ? route.abort('internetdisconnected') : route.continue()));

    await page.goto(`/queue.html?event=${eventId}`);
    await page.locator('#queue-paused').waitFor();
    await page.locator('#queue-connection[data-phase="live"]').waitFor();

    // The laptop goes to sleep for longer than the presence grace (10 s).
    away = true;
    for (const [ws, server] of sockets) {
      await server.close();
      await ws.close({ code: 1006, reason: 'away' });
    }
    await page.locator('#queue-connection[data-phase="retrying"]').waitFor({ timeout: 10_000 });
    await page.waitForTimeout(12_000);
    await roomSettings(gateway, eventId, { paused: false }); // the controller now skips the absent visitor
    await page.waitForTimeout(1500);
    away = false;

    await page.locator('#queue-left').getByRole('heading', { name: "You're no longer in the queue" }).waitFor({ timeout: 45_000 });
    await screenshot(page, 'queue-left');
    const rejoined = page.waitForResponse(isJoin);
    await page.getByRole('button', { name: 'Join the queue again' }).click();
    assert.equal((await (await rejoined).json()).status, 'waiting');
    await waitAdmitted(page);
    // Console errors here are only the browser logging the connections refused while away.
    assert.deepEqual(errors.filter((e) => !/ERR_INTERNET_DISCONNECTED|WebSocket|EventSource|Failed to load resource/i.test(e)), []);
  });
});
