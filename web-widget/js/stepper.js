// The − [n] + quantity picker used on the event page and in the cart.

import { el } from './util.js';

/**
 * A quantity picker bounded to min..max. `onChange(n)` runs after every change; if it returns a number,
 * that is the quantity actually kept (e.g. capped by a per-buyer limit) and the picker shows it.
 */
export function stepper({ inputId, name, max, min = 0, disabled = false, value = min, onChange }) {
  const input = el('input', {
    id: inputId,
    type: 'number',
    inputMode: 'numeric',
    min: String(min),
    max: String(max),
    step: '1',
    value: String(value),
    disabled,
    attrs: { 'aria-label': `Quantity of ${name}` },
  });
  const less = el('button', { type: 'button', text: '−', attrs: { 'aria-label': `One fewer ${name}` } });
  const more = el('button', { type: 'button', text: '+', attrs: { 'aria-label': `One more ${name}` } });
  const show = (v) => {
    input.value = String(v);
    less.disabled = disabled || v <= min;
    more.disabled = disabled || v >= max;
  };
  const set = (n) => {
    const v = Math.min(Math.max(Number.isFinite(n) ? Math.trunc(n) : min, min), max);
    show(v);
    const kept = onChange ? onChange(v) : undefined;
    if (typeof kept === 'number' && kept !== v) show(kept);
  };
  show(Math.min(Math.max(value, min), max));
  less.addEventListener('click', () => set(Number(input.value) - 1));
  more.addEventListener('click', () => set(Number(input.value) + 1));
  input.addEventListener('change', () => set(Number(input.value)));
  input.addEventListener('input', () => {
    if (input.value !== '' && Number.isFinite(Number(input.value))) set(Number(input.value));
  });
  return { node: el('div', { class: 'stepper' }, less, input, more), set, input };
}
