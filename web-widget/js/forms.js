// No double submits: every form and action button goes through these helpers, which disable the
// button(s) before the request starts and enable them again when it fails (or, for forms that stay on
// the page, when it succeeds).

import { describeError } from './api.js';
import { say } from './util.js';

/** Returned by a handler that navigates away: the buttons stay disabled until the page unloads. */
export const STAY_DISABLED = Symbol('stay-disabled');

function submitButtons(form) {
  const own = [...form.querySelectorAll('button:not([type]), button[type="submit"], input[type="submit"]')];
  const outside = form.id ? [...document.querySelectorAll(`[form="${CSS.escape(form.id)}"][type="submit"]`)] : [];
  return [...own, ...outside];
}

function setBusy(buttons, busy) {
  for (const b of buttons) {
    b.disabled = busy;
    if (busy) b.setAttribute('aria-busy', 'true');
    else b.removeAttribute('aria-busy');
  }
}

/**
 * Wires `form` so that submitting runs `handler(formData, form, submitter)` once at a time (`submitter`
 * is the button that submitted it, when there was one). `status` is the element where errors (and the
 * handler's returned string, if any) are shown.
 */
export function onSubmit(form, handler, { status } = {}) {
  let busy = false;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (busy) return;
    busy = true;
    const buttons = submitButtons(form);
    setBusy(buttons, true);
    form.setAttribute('aria-busy', 'true');
    say(status, '');
    let keepDisabled = false;
    try {
      const result = await handler(new FormData(form), form, event.submitter || null);
      if (result === STAY_DISABLED) keepDisabled = true;
      else if (typeof result === 'string') say(status, result, 'ok');
    } catch (err) {
      console.warn(err);
      say(status, describeError(err), 'error');
    } finally {
      form.removeAttribute('aria-busy');
      if (!keepDisabled) {
        setBusy(buttons, false);
        busy = false;
      }
    }
  });
}

/** Runs `action()` on click, with the button disabled while it runs. Same status rules as onSubmit. */
export function onAction(button, action, { status } = {}) {
  let busy = false;
  button.addEventListener('click', async (event) => {
    event.preventDefault();
    if (busy) return;
    busy = true;
    setBusy([button], true);
    say(status, '');
    let keepDisabled = false;
    try {
      const result = await action(event);
      if (result === STAY_DISABLED) keepDisabled = true;
      else if (typeof result === 'string') say(status, result, 'ok');
    } catch (err) {
      console.warn(err);
      say(status, describeError(err), 'error');
    } finally {
      if (!keepDisabled) {
        setBusy([button], false);
        busy = false;
      }
    }
  });
}

/** Trimmed text field of a FormData. */
export function text(data, name) {
  return String(data.get(name) ?? '').trim();
}

/** Whole-number field of a FormData; throws a readable error when it is not one. */
export function whole(data, name, label = name) {
  const raw = String(data.get(name) ?? '').trim().replace(/[.\s]/g, '');
  if (!/^-?\d+$/.test(raw)) throw new Error(`${label} must be a whole number.`);
  return Number(raw);
}

/** Like `whole`, but an empty field gives undefined (the API's default applies). */
export function optionalWhole(data, name, label = name) {
  const raw = String(data.get(name) ?? '').trim();
  return raw === '' ? undefined : whole(data, name, label);
}
