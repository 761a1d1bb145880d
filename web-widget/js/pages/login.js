// Sign in or register, then go back to `next` (a same-origin relative path only).

import { clearSession, currentUser, safeNext } from '../api.js';
import { wireRegister, wireSignIn } from '../auth.js';
import { renderChrome } from '../layout.js';
import { el, fill, param } from '../util.js';

renderChrome({ active: 'login' });

const next = safeNext(param('next'), 'index.html');
const hint = document.getElementById('next-hint');
const already = document.getElementById('already');

const PLACES = {
  '/cart.html': 'your cart',
  '/admin.html': 'the admin console',
  '/index.html': 'the events list',
  '/order.html': 'your order',
  '/tickets.html': 'your e-tickets',
  '/checkin.html': 'check-in',
};
const place = PLACES[new URL(next, window.location.href).pathname] || 'where you were';
if (param('next')) {
  hint.textContent = `Sign in or create an account to continue to ${place}. Your cart stays as it is.`;
}

const go = () => {
  // replace(): the back button should not lead to a sign-in form that is already done.
  window.location.replace(next);
};

const user = currentUser();
if (user) {
  fill(already,
    el('p', {}, 'You are signed in as ', el('strong', { text: user.name }), ` (${user.email}).`),
    el('p', { class: 'actions' },
      el('a', { class: 'btn btn-small', href: next, text: `Continue to ${place}` }),
      el('button', {
        type: 'button',
        class: 'btn btn-small btn-secondary',
        text: 'Use another account',
        onClick: () => {
          clearSession();
          window.location.reload();
        },
      })));
  already.hidden = false;
}

wireSignIn(document.getElementById('login-form'), document.getElementById('login-msg'), go);
wireRegister(document.getElementById('register-form'), document.getElementById('register-msg'), go);
