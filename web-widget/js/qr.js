// QR codes drawn by our own server (`qr_svg` of a QRIS payment or an e-ticket) shown on the page.
//
// This is the one place where markup from an API answer becomes DOM. It is allowed because the gateway
// renders these SVGs itself from a code or QRIS string it generated (the text is never a buyer's input),
// and it is still handled with care: the string is parsed as an SVG document (never assigned to
// innerHTML of the page), only an <svg> root is accepted, and anything that could run script or load
// something (script, foreignObject, links, images, event-handler and style attributes) is dropped before
// the element is imported into the page.

import { el } from './util.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
const DROP_ELEMENTS = 'script, foreignObject, style, a, image, use, iframe, animate, set, animateTransform, animateMotion';

/** The <svg> element for `markup`, or null when it is missing or is not an SVG document. */
export function parseQrSvg(markup) {
  if (typeof markup !== 'string' || !markup.trim()) return null;
  let doc;
  try {
    doc = new DOMParser().parseFromString(markup.trim(), 'image/svg+xml');
  } catch {
    return null;
  }
  const svg = doc.documentElement;
  if (!svg || svg.namespaceURI !== SVG_NS || svg.localName !== 'svg') return null;
  if (doc.getElementsByTagName('parsererror').length) return null;

  for (const node of [...svg.querySelectorAll(DROP_ELEMENTS)]) node.remove();
  for (const node of [svg, ...svg.querySelectorAll('*')]) {
    for (const attr of [...node.attributes]) {
      const name = attr.name.toLowerCase();
      if (name.startsWith('on') || name === 'style' || name.endsWith('href')) node.removeAttribute(attr.name);
    }
  }

  // Sized by CSS (the container), so keep the drawing's own coordinates in a viewBox.
  const w = parseFloat(svg.getAttribute('width'));
  const h = parseFloat(svg.getAttribute('height'));
  if (!svg.hasAttribute('viewBox') && w > 0 && h > 0) svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  if (svg.hasAttribute('viewBox')) {
    svg.removeAttribute('width');
    svg.removeAttribute('height');
  }
  return document.importNode(svg, true);
}

/**
 * A box holding the QR code, labelled for screen readers; when the SVG is missing or unreadable the box
 * says so in words instead (the code printed next to it still works at the gate).
 */
export function qrBox(markup, label, { id, className = '' } = {}) {
  const svg = parseQrSvg(markup);
  const box = el('div', { id, class: `qr${className ? ` ${className}` : ''}` });
  if (svg) {
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', label);
    svg.setAttribute('focusable', 'false');
    box.append(svg);
  } else {
    box.classList.add('qr-missing');
    box.append(el('span', { class: 'muted small', text: 'The QR code could not be shown.' }));
  }
  return box;
}
