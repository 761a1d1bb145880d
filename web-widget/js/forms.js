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
 * An event handler that runs `action(event)` once at a time, with `buttons()` disabled (and aria-busy)
 * and `mark(true)` while it runs; `status` shows what it throws as an error and a string it returns as a
 * success. After STAY_DISABLED the buttons stay disabled and the handler stays closed.
 */
function guarded(buttons, action, { status, mark = () => {} }) {
  let busy = false;
  return async (event) => {
    event.preventDefault();
    if (busy) return;
    busy = true;
    const disabled = buttons();
    setBusy(disabled, true);
    mark(true);
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
      mark(false);
      if (!keepDisabled) {
        setBusy(disabled, false);
        busy = false;
      }
    }
  };
}

/**
 * Wires `form` so that submitting runs `handler(formData, form, submitter)` once at a time (`submitter`
 * is the button that submitted it, when there was one). `status` is the element where errors (and the
 * handler's returned string, if any) are shown.
 */
export function onSubmit(form, handler, { status } = {}) {
  const mark = (busy) => (busy ? form.setAttribute('aria-busy', 'true') : form.removeAttribute('aria-busy'));
  form.addEventListener('submit', guarded(
    () => submitButtons(form),
    (event) => handler(new FormData(form), form, event.submitter || null),
    { status, mark },
  ));
}

/** Runs `action()` on click, with the button disabled while it runs. Same status rules as onSubmit. */
export function onAction(button, action, { status } = {}) {
  button.addEventListener('click', guarded(() => [button], action, { status }));
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
