// Accessibility: axe-core (from npm) audits every page of the storefront, the queue, the widget, the
// check-in page and the admin console, on a phone-sized and a desktop viewport. No serious or critical
// violation of WCAG 2.x A/AA may remain.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';

import { signInToConsole } from './lib/fixtures.js';
import { apiCall, chrome, gateway, useSite } from './lib/harness.js';

useSite();

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const VIEWPORTS = [
  { name: 'phone', width: 390, height: 844 },
  { name: 'desktop', width: 1280, height: 900 },
];

/** The serious and critical violations on the page as it is now, one line each. */
async function audit(page) {
  // Evaluated through the debugging protocol: the page's Content-Security-Policy does not apply.
  await page.evaluate(AXE);
  const result = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
}

test('every page has no serious or critical accessibility violation on a phone and a desktop', async () => {
  const events = await apiCall(gateway.baseURL, 'GET', '/api/events');
  const event = events.body[0].id;
  const pages = [
    ['storefront', '/', '.event-card'],
    ['event', `/event.html?id=${event}`, '#ticket-list'],
    ['queue', `/queue.html?event=${event}`, '#queue'],
    ['sign in', '/login.html', 'form'],
    ['cart', '/cart.html', 'main'],
    ['orders', '/orders.html', 'main'],
    ['check-in', '/checkin.html', 'main'],
    ['widget', `/widget-demo.html?event=${event}`, '#queue-checkout-widget'],
  ];
  const found = [];
  for (const viewport of VIEWPORTS) {
    const context = await chrome.browser.newContext({ baseURL: gateway.baseURL, viewport, locale: 'en-GB' });
    context.setDefaultTimeout(15_000);
    const page = await context.newPage();
    try {
      for (const [name, url, ready] of pages) {
        await page.goto(url);
        await page.locator(ready).first().waitFor();
        await page.waitForTimeout(300);
        for (const v of await audit(page)) found.push(`${viewport.name} ${name}: ${v}`);
      }
      await signInToConsole(page, gateway);
      for (const v of await audit(page)) found.push(`${viewport.name} admin: ${v}`);
      await page.goto(`/admin.html#event/${event}`);
      await page.locator('#room-live').waitFor();
      await page.waitForTimeout(300);
      for (const v of await audit(page)) found.push(`${viewport.name} admin event: ${v}`);
    } finally {
      await context.close();
    }
  }
  assert.deepEqual(found, []);
});
