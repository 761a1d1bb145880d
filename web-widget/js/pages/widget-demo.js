// widget-demo.html: embeds widget.js the way another site would. The event is ?event=<id>, or the first
// published event when none is given (event ids differ between databases, so the page cannot hard-code one).

import { get } from '../api.js';
import { isUuid, param } from '../util.js';

const snippet = document.getElementById('demo-snippet');
const note = document.getElementById('demo-note');

async function eventId() {
  const fromQuery = param('event');
  if (isUuid(fromQuery)) return fromQuery;
  const events = await get('/api/events', { auth: false });
  const list = Array.isArray(events) ? events : events?.items || [];
  return list.length ? list[0].id : null;
}

async function start() {
  let id;
  try {
    id = await eventId();
  } catch {
    id = null;
  }
  if (!id) {
    snippet.textContent = 'No published event to embed.';
    return;
  }
  const api = window.location.origin;
  const src = new URL('widget.js', window.location.href).href;
  snippet.textContent = `<div id="queue-checkout-widget"></div>\n<script src="${src}"\n        data-event="${id}"\n        data-api="${api}" async></script>`;
  note.textContent = 'The box on the right is exactly this snippet, running on this page.';
  const script = document.createElement('script');
  script.src = 'widget.js';
  script.dataset.event = id;
  script.dataset.api = api;
  script.async = true;
  document.getElementById('demo-script-slot').append(script);
}

start();
