// The page chrome every page shares: favicon, skip link, header with navigation, cart count and sign-in
// state, and footer.

import { clearSession, currentUser, onSessionChange } from './api.js';
import { loadCart, onCartChange, totals } from './cart.js';
import { el, fill } from './util.js';

/**
 * Puts the page frame every storefront page shares around its `<main id="main">`: the favicon and
 * theme colour, the skip link (first in the tab order), the header with navigation, cart count and
 * sign-in state (#site-header) and the footer (#site-footer). The HTML pages carry only their title,
 * stylesheet, script and main content.
 * @param {{active?: 'events'|'cart'|'orders'|'login'|'admin'|'checkin'}} options
 */
export function renderChrome({ active } = {}) {
  const { header, footer } = renderFrame();
  const draw = () => drawHeader(header, active);
  draw();
  onSessionChange(draw);
  onCartChange(draw);
  fill(
    footer,
    el('div', { class: 'container footer-inner' },
      el('p', {}, el('strong', { text: 'Tiket Kampus' }), ' — fair, queue-first ticketing for campus concerts across Indonesia.'),
      el('p', { class: 'muted', text: 'All times are Western Indonesia Time (WIB, UTC+7). Prices in rupiah, taxes included.' })),
  );
}

/** Adds the favicon, theme colour, skip link, header and footer around #main; returns header and footer. */
function renderFrame() {
  document.head.append(
    el('link', { rel: 'icon', href: 'img/favicon.svg', type: 'image/svg+xml' }),
    el('meta', { name: 'theme-color', content: '#b3261e' }));
  const main = document.getElementById('main');
  const header = el('header', { class: 'site-header', id: 'site-header' });
  const footer = el('footer', { class: 'site-footer', id: 'site-footer' });
  document.body.prepend(el('a', { class: 'skip-link', href: '#main', text: 'Skip to content' }));
  main.before(header);
  main.after(footer);
  return { header, footer };
}

function navLink(href, label, isActive, extra) {
  return el('a', { href, class: `nav-link${isActive ? ' is-active' : ''}`, attrs: { 'aria-current': isActive ? 'page' : null } },
    label, extra || null);
}

function drawHeader(header, active) {
  const user = currentUser();
  const { units } = totals(loadCart());
  const cartBadge = units > 0
    ? el('span', { class: 'badge', attrs: { 'aria-label': `${units} item${units === 1 ? '' : 's'}` }, text: String(units) })
    : null;

  const account = user
    ? el('div', { class: 'account' },
        el('span', { class: 'account-name', attrs: { title: user.email } }, el('span', { class: 'sr-only', text: 'Signed in as ' }), user.name),
        el('button', {
          type: 'button',
          class: 'btn btn-ghost btn-small',
          text: 'Sign out',
          onClick: () => {
            clearSession();
            if (active === 'admin' || active === 'login' || active === 'checkin') window.location.reload();
          },
        }))
    : navLink(`login.html?next=${encodeURIComponent(currentPath())}`, 'Sign in', active === 'login');

  fill(
    header,
    el('div', { class: 'container header-inner' },
      // Named by its visible text (and a hidden hint), so speech users can say what they see.
      el('a', { href: 'index.html', class: 'brand' },
        el('img', { src: 'img/favicon.svg', alt: '', width: 32, height: 32 }),
        el('span', { class: 'brand-name' }, 'Tiket', el('span', { class: 'brand-accent', text: 'Kampus' })),
        el('span', { class: 'sr-only', text: ', home' })),
      el('nav', { class: 'main-nav', attrs: { 'aria-label': 'Main' } },
        navLink('index.html', 'Events', active === 'events'),
        navLink('cart.html', 'Cart', active === 'cart', cartBadge),
        user ? navLink('orders.html', 'My orders', active === 'orders') : null,
        user && (user.role === 'staff' || user.role === 'admin') ? navLink('checkin.html', 'Check-in', active === 'checkin') : null,
        user && user.role === 'admin' ? navLink('admin.html', 'Admin', active === 'admin') : null,
        account)),
  );
}

/** This page as a relative path, for "come back here after signing in". */
function currentPath() {
  const path = window.location.pathname.split('/').pop() || 'index.html';
  return path === 'login.html' ? 'index.html' : path + window.location.search;
}
