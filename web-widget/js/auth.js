// Sign-in and registration forms, shared by login.html and the admin console's sign-in panel.

import { ApiError, post, saveSession } from './api.js';
import { onSubmit, STAY_DISABLED, text } from './forms.js';

function requireFields(pairs) {
  for (const [value, message] of pairs) {
    if (!value) throw new ApiError({ status: 0, code: 'validation_failed', message });
  }
}

/**
 * Wires a sign-in form (fields `email`, `password`). After a successful sign-in `done(session)` runs;
 * the submit button stays disabled because `done` is expected to navigate or redraw the page.
 */
export function wireSignIn(form, status, done) {
  onSubmit(form, async (data) => {
    const email = text(data, 'email');
    const password = String(data.get('password') ?? '');
    requireFields([[email, 'Enter your email address.'], [password, 'Enter your password.']]);
    const answer = await post('/api/auth/login', { email, password }, { auth: false });
    const session = saveSession(answer);
    await done(session);
    return STAY_DISABLED;
  }, { status });
}

/** Wires a registration form (fields `name`, `email`, `password`); same contract as wireSignIn. */
export function wireRegister(form, status, done) {
  onSubmit(form, async (data) => {
    const name = text(data, 'name');
    const email = text(data, 'email');
    const password = String(data.get('password') ?? '');
    requireFields([
      [name, 'Enter your name.'],
      [email, 'Enter your email address.'],
      [password.length >= 8, 'Password must be at least 8 characters.'],
    ]);
    const answer = await post('/api/auth/register', { email, password, name }, { auth: false });
    const session = saveSession(answer);
    await done(session);
    return STAY_DISABLED;
  }, { status });
}
