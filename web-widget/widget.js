/*!
 * Tiket Kampus queue widget — an embeddable waiting-room box for one event.
 *
 *   <div id="queue-checkout-widget"></div>
 *   <script src="https://tickets.example/widget.js" data-event="EVENT-ID" data-api="https://tickets.example" async></script>
 *
 * Without the <div> the box is placed right after the script tag. `data-api` defaults to the origin the
 * script was loaded from; the embedding site's origin must be listed in the gateway's CORS_ORIGINS.
 * The box lives in a shadow root (its styles do not leak out, the page's do not leak in) and needs no
 * other file. Live updates: WebSocket, else Server-Sent Events, else polling every 2 s — one at a time.
 *
 * The container receives DOM events a page may listen to:
 *   queue-checkout:state     detail {state, position?}   (joining, waiting, pre_queue, admitted, left, error)
 *   queue-checkout:admitted  detail {eventId, expiresAt, checkoutUrl}
 */
(function () {
  'use strict';

  var script = document.currentScript;
  if (!script) return; // loaded as a module or injected in a way that hides the tag: nothing to configure from

  var TYPES = ['position', 'pre_queue', 'admitted', 'stock', 'paused', 'left'];
  var POLL_MS = 2000;

  var CSS_TEXT = [
    ':host{all:initial;display:block;contain:content;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",Arial,sans-serif;color:#1d1b1a;line-height:1.45;font-size:15px;max-width:360px}',
    '*,*::before,*::after{box-sizing:border-box}',
    '.box{border:1px solid #e6dfdb;border-radius:14px;background:#fff;box-shadow:0 4px 18px rgba(40,20,10,.08);overflow:hidden}',
    '.head{padding:.75em 1em;background:linear-gradient(135deg,#8c1d17,#b3261e 55%,#d4581b);color:#fff}',
    '.brand{display:block;font-size:.72em;font-weight:800;letter-spacing:.08em;text-transform:uppercase;opacity:.85}',
    '.event{display:block;font-weight:800;font-size:1.05em;overflow-wrap:anywhere}',
    '.when{display:block;font-size:.82em;opacity:.9}',
    '.body{padding:.9em 1em;display:grid;gap:.6em}',
    '.big{font-size:2.4em;font-weight:800;line-height:1;color:#b3261e;font-variant-numeric:tabular-nums}',
    '.row{display:flex;justify-content:space-between;gap:.75em;font-size:.92em}',
    '.row b{font-variant-numeric:tabular-nums}',
    '.note{margin:0;padding:.5em .65em;border-radius:8px;font-size:.88em;background:#fff4dc;color:#5c3d00;border:1px solid #f1d79b}',
    '.note.bad{background:#fdecea;color:#8c1d17;border-color:#f3c4bf}',
    '.ok{color:#0f766e;font-weight:800;font-size:1.3em;margin:0}',
    'p{margin:0}',
    '.muted{color:#6b6461;font-size:.82em}',
    'button,a.btn{display:inline-flex;align-items:center;justify-content:center;min-height:2.5em;padding:.5em 1em;border-radius:999px;border:0;background:#b3261e;color:#fff;font:inherit;font-weight:700;text-decoration:none;cursor:pointer}',
    'button:hover,a.btn:hover{background:#8c1d17}',
    'button:disabled{opacity:.55;cursor:not-allowed}',
    'button:focus-visible,a:focus-visible{outline:3px solid #1d4ed8;outline-offset:2px}',
    'code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.75em;word-break:break-all;background:#fffaf6;border:1px solid #e6dfdb;border-radius:6px;padding:.2em .35em;display:block}',
    '.stock{list-style:none;margin:0;padding:.6em 1em .8em;border-top:1px dashed #e6dfdb;display:grid;gap:.2em;font-size:.85em}',
    '.stock li{display:flex;justify-content:space-between;gap:.75em}',
    '.stock li b{font-variant-numeric:tabular-nums}',
    '.stock li.out b{color:#8c1d17}',
    '.conn{margin:0;padding:.45em 1em;font-size:.75em;color:#6b6461;background:#fffaf6;border-top:1px solid #e6dfdb}',
    '.conn:empty{display:none}',
    '.sr{position:absolute;width:1px;height:1px;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}',
    '[hidden]{display:none!important}',
  ].join('\n');

  // ---- helpers ------------------------------------------------------------------------------

  function h(tag, props) {
    var node = document.createElement(tag);
    var p = props || {};
    Object.keys(p).forEach(function (k) {
      var v = p[k];
      if (v === null || v === undefined || v === false) return;
      if (k === 'text') node.textContent = String(v);
      else if (k === 'class') node.className = v;
      else if (k.slice(0, 2) === 'on') node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    });
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function num(n) {
    return Math.trunc(Number(n) || 0).toString().replace(/\B(?=(\d{3})+(?!\d))/g, '.');
  }

  function wib(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return '';
    return new Intl.DateTimeFormat('en-GB', {
      timeZone: 'Asia/Jakarta', weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
    }).format(d) + ' WIB';
  }

  function eta(e) {
    var min = Math.max(0, Number(e && e.min) || 0);
    var max = Math.max(min, Number(e && e.max) || 0);
    if (max <= 0) return 'any moment now';
    if (max < 60) return 'less than a minute';
    var lo = Math.max(1, Math.floor(min / 60));
    var hi = Math.max(lo, Math.ceil(max / 60));
    return lo === hi ? 'about ' + hi + ' min' : 'about ' + lo + '\u2013' + hi + ' min';
  }

  function clock(ms) {
    var t = Math.max(0, Math.ceil(ms / 1000));
    var m = Math.floor(t / 60);
    return m + ':' + String(t % 60).padStart(2, '0');
  }

  function store(key, value) {
    try {
      if (value === undefined) return sessionStorage.getItem(key);
      if (value === null) sessionStorage.removeItem(key);
      else sessionStorage.setItem(key, value);
    } catch (e) {
      /* storage disabled: a reload just joins again */
    }
    return null;
  }

  function request(url, method) {
    return fetch(url, { method: method || 'GET', credentials: 'omit', cache: 'no-store', headers: { Accept: 'application/json' } })
      .catch(function () {
        var e = new Error('Could not reach the ticket server.');
        e.status = 0;
        throw e;
      })
      .then(function (res) {
        return res.text().then(function (text) {
          var body = null;
          try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
          if (res.ok) return body;
          var err = new Error((body && body.error && body.error.message) || 'HTTP ' + res.status);
          err.status = res.status;
          err.code = body && body.error && body.error.code;
          var ra = res.headers.get('Retry-After');
          err.retryAfter = ra && /^\d+$/.test(ra) ? Number(ra) : null;
          throw err;
        });
      });
  }

  // ---- the live channel (mirrors js/queue-client.js) ------------------------------------------

  function channel(api, eventId, token, onMessage, onState, onUnauthorized) {
    var order = [];
    if (typeof window.WebSocket === 'function') order.push('websocket');
    if (typeof window.EventSource === 'function') order.push('sse');
    order.push('polling');
    var index = 0, gen = 0, current = null, received = false, failures = 0, attempt = 0, timer = null, stopped = false;

    function url(kind) {
      var u = new URL(api + '/api/events/' + encodeURIComponent(eventId) + '/queue/' + kind);
      u.searchParams.set('visitor_token', token);
      return u;
    }
    function live() {
      if (received) return;
      received = true; failures = 0; attempt = 0;
      onState(order[index], 'live');
    }
    function deliver(g, data) {
      if (g !== gen) return;
      var m = data;
      if (typeof data === 'string') { try { m = JSON.parse(data); } catch (e) { return; } }
      if (!m || typeof m.type !== 'string') return;
      live();
      onMessage(m);
    }
    function close() {
      clearTimeout(timer);
      gen += 1;
      if (current) { try { current.close(); } catch (e) { /* closed */ } }
      current = null;
    }
    var openers = {
      websocket: function (g) {
        var u = url('ws');
        u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
        var ws = new WebSocket(u.href);
        ws.onmessage = function (e) { deliver(g, e.data); };
        ws.onclose = function () { dropped(g); };
        return { close: function () { ws.onmessage = ws.onclose = null; ws.close(1000); } };
      },
      sse: function (g) {
        var es = new EventSource(url('sse').href);
        var handle = function (e) { deliver(g, e.data); };
        TYPES.forEach(function (t) { es.addEventListener(t, handle); });
        es.onmessage = handle;
        es.onerror = function () { dropped(g); };
        return { close: function () { es.close(); } };
      },
      polling: function (g) {
        var t = null, off = false;
        (function tick() {
          request(url('status').href).then(function (body) {
            if (g !== gen || off) return;
            live();
            (body && body.messages || []).forEach(function (m) { if (m && m.type) onMessage(m); });
            if (g === gen && !off) t = setTimeout(tick, POLL_MS);
          }, function (err) {
            if (g !== gen || off) return;
            if (err.status === 401) unauthorized(); else dropped(g, err.retryAfter);
          });
        })();
        return { close: function () { off = true; clearTimeout(t); } };
      },
    };
    function open() {
      close();
      if (stopped) return;
      var g = gen;
      received = false;
      onState(order[index], 'connecting');
      try { current = openers[order[index]](g); } catch (e) { current = null; dropped(g); }
    }
    function check(next) {
      var g = gen;
      request(url('status').href).then(function (body) {
        if (g !== gen || stopped) return;
        (body && body.messages || []).forEach(function (m) { if (m && m.type) onMessage(m); });
        if (g === gen && !stopped) next();
      }, function (err) {
        if (g !== gen || stopped) return;
        if (err.status === 401) unauthorized(); else next();
      });
    }
    function dropped(g, retryAfter) {
      if (g !== gen || stopped) return;
      var worked = received;
      close();
      if (!worked) failures += 1;
      if (!worked && failures >= 2 && index < order.length - 1) {
        index += 1; failures = 0; attempt = 0;
        if (order[index] === 'polling') open(); else check(open);
        return;
      }
      var delay = retryAfter ? retryAfter * 1000 : Math.round(Math.min(30000, 1000 * Math.pow(2, attempt)) * (0.8 + Math.random() * 0.4));
      attempt = Math.min(attempt + 1, 10);
      onState(order[index], 'retrying', delay);
      var transport = order[index];
      timer = setTimeout(function () { if (worked || transport === 'polling') open(); else check(open); }, delay);
    }
    function unauthorized() {
      stop();
      onUnauthorized();
    }
    function stop() {
      stopped = true;
      close();
      onState(order[index], 'stopped');
    }
    open();
    return { stop: stop };
  }

  // ---- one widget -----------------------------------------------------------------------------

  function mount(host) {
    var eventId = script.getAttribute('data-event') || host.getAttribute('data-event') || '';
    var apiAttr = script.getAttribute('data-api') || host.getAttribute('data-api');
    var api;
    try {
      api = new URL(apiAttr || script.src, window.location.href).origin;
    } catch (e) {
      api = window.location.origin;
    }
    var root = host.attachShadow({ mode: 'open' });
    if ('adoptedStyleSheets' in root && typeof CSSStyleSheet === 'function' && 'replaceSync' in CSSStyleSheet.prototype) {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS_TEXT);
      root.adoptedStyleSheets = [sheet];
    } else {
      root.append(h('style', { text: CSS_TEXT }));
    }

    var key = 'qc.widget.v1.' + api + '.' + eventId;
    var names = {};
    var stockLines = {};
    var state = 'idle', paused = false, lastEta = null, lastPosition = null, conn = null, countdown = null;

    var title = h('strong', { class: 'event', text: 'Ticket queue' });
    var when = h('span', { class: 'when' });
    var body = h('div', { class: 'body' });
    var stockList = h('ul', { class: 'stock', 'aria-label': 'Still available', hidden: true });
    var connLine = h('p', { class: 'conn', 'data-transport': '', 'data-phase': 'stopped' });
    var announcer = h('p', { class: 'sr', role: 'status', 'aria-live': 'polite', 'aria-atomic': 'true' });
    var box = h('section', { class: 'box', part: 'box', 'aria-label': 'Ticket queue', 'data-state': 'idle' },
      h('div', { class: 'head' }, h('span', { class: 'brand', text: 'Tiket Kampus queue' }), title, when),
      body, stockList, connLine, announcer);
    root.append(box);

    function emit(name, detail) {
      host.dispatchEvent(new CustomEvent('queue-checkout:' + name, { detail: detail, bubbles: true }));
    }
    function setState(next, extra) {
      state = next;
      box.setAttribute('data-state', next);
      emit('state', Object.assign({ state: next }, extra || {}));
    }
    var lastSaid = 0;
    function say(text, urgent) {
      if (!urgent && Date.now() - lastSaid < 20000) return;
      if (announcer.textContent === text) return;
      lastSaid = Date.now();
      announcer.textContent = text;
    }
    function render() {
      body.replaceChildren.apply(body, Array.prototype.filter.call(arguments, Boolean));
    }
    function stopAll() {
      if (conn) conn.stop();
      conn = null;
      clearInterval(countdown);
    }

    function drawStock() {
      var ids = Object.keys(stockLines);
      stockList.hidden = ids.length === 0;
      stockList.replaceChildren.apply(stockList, ids.map(function (id) {
        var left = Number(stockLines[id]) || 0;
        return h('li', { class: left > 0 ? '' : 'out', 'data-stock-id': id },
          h('span', { text: names[id] || 'Tickets' }), h('b', { text: left > 0 ? num(left) + ' left' : 'Sold out' }));
      }));
    }

    function idle() {
      stopAll();
      setState('idle');
      render(
        h('p', { text: 'Tickets are sold through a fair waiting room. Join the queue and keep this page open until it is your turn.' }),
        h('button', { type: 'button', onclick: join, text: 'Join the queue' }));
    }

    function fail(text, retry) {
      stopAll();
      setState('error');
      render(h('p', { class: 'note bad', role: 'alert', text: text }),
        retry ? h('button', { type: 'button', onclick: join, text: 'Try again' }) : null);
    }

    function waiting(m) {
      var pos = Math.max(1, Number(m.position) || 1);
      var ahead = Math.max(0, Number(m.people_ahead != null ? m.people_ahead : pos - 1) || 0);
      if (m.eta_secs) lastEta = m.eta_secs;
      lastPosition = m;
      var first = state !== 'waiting';
      setState('waiting', { position: pos });
      render(
        h('p', { class: 'muted', text: 'Your place in line' }),
        h('p', { class: 'big', 'data-position': String(pos), text: '#' + num(pos) }),
        h('p', { class: 'row' }, h('span', { text: 'People ahead' }), h('b', { text: ahead ? num(ahead) : 'nobody' })),
        h('p', { class: 'row' }, h('span', { text: 'Estimated wait' }), h('b', { text: paused ? 'paused' : lastEta ? eta(lastEta) : '…' })),
        paused ? h('p', { class: 'note', text: 'Admissions are paused for a moment. You keep your place.' }) : null,
        m.likely_sold_out ? h('p', { class: 'note bad', text: 'Tickets are likely to sell out before your turn.' }) : null);
      say('You are number ' + pos + ' in line.', first);
    }

    function prequeue(m) {
      var first = state !== 'pre_queue';
      setState('pre_queue');
      render(
        h('p', { text: 'The sale opens ' + (m.sale_opens_at ? wib(m.sale_opens_at) : 'soon') + '. Everyone here before then gets a place by a fair random draw at the opening.' }),
        m.seed_hash ? h('p', { class: 'muted', text: 'Published hash of the draw seed (fairness proof):' }) : null,
        m.seed_hash ? h('code', { text: m.seed_hash }) : null);
      if (first) say('The sale has not opened yet. Places are drawn at random at the opening.', true);
    }

    function admitted(m) {
      var expires = Date.parse(m.expires_at);
      stopAll();
      if (!(expires > Date.now())) { left('Your turn has expired.'); return; }
      var token = store(key);
      var checkoutUrl = api + '/queue.html?event=' + encodeURIComponent(eventId) + (token ? '#visitor_token=' + encodeURIComponent(token) : '');
      var timeLeft = h('b', { text: clock(expires - Date.now()) });
      setState('admitted');
      render(
        h('p', { class: 'ok', text: 'It\u2019s your turn!' }),
        h('p', {}, 'Your place is held for ', timeLeft, '.'),
        h('a', { class: 'btn', href: checkoutUrl, target: '_top', text: 'Continue to checkout' }));
      countdown = setInterval(function () {
        var ms = expires - Date.now();
        if (ms <= 0) { left('Your turn has expired.'); return; }
        timeLeft.textContent = clock(ms);
      }, 1000);
      say('It\u2019s your turn! Continue to checkout.', true);
      emit('admitted', { eventId: eventId, expiresAt: m.expires_at, checkoutUrl: checkoutUrl });
    }

    function left(text) {
      stopAll();
      setState('left');
      render(h('p', { class: 'note bad', text: (text || 'Your place in the queue has lapsed.') + ' You can join again at the back of the queue.' }),
        h('button', { type: 'button', onclick: join, text: 'Join the queue again' }));
      say('You are no longer in the queue.', true);
    }

    function onMessage(m) {
      if (m.type === 'stock') {
        (m.ticket_categories || []).concat(m.merchandise || []).forEach(function (l) { stockLines[l.id] = l.remaining; });
        drawStock();
      } else if (m.type === 'paused') {
        paused = !!m.paused;
        if (state === 'waiting' && lastPosition) waiting(lastPosition);
      } else if (m.type === 'position') {
        if (state === 'admitted' || state === 'left') return;
        paused = !!m.paused;
        waiting(m);
      } else if (m.type === 'pre_queue') {
        if (state !== 'admitted' && state !== 'left') prequeue(m);
      } else if (m.type === 'admitted') {
        admitted(m);
      } else if (m.type === 'left') {
        left();
      }
    }

    var NAMES = { websocket: 'WebSocket', sse: 'Server-Sent Events', polling: 'polling every 2 s' };
    function onState(transport, phase, delay) {
      connLine.setAttribute('data-transport', transport || '');
      connLine.setAttribute('data-phase', phase);
      if (phase === 'live') connLine.setAttribute('data-last-transport', transport);
      connLine.textContent = phase === 'live' ? 'Live updates: ' + NAMES[transport]
        : phase === 'connecting' ? 'Connecting…'
        : phase === 'retrying' ? 'Reconnecting in ' + Math.max(1, Math.round(delay / 1000)) + ' s…' : '';
    }

    var busy = false;
    function join() {
      if (busy) return;
      busy = true;
      stopAll();
      setState('joining');
      render(h('p', { text: 'Joining the queue…' }));
      var token = store(key);
      var path = api + '/api/events/' + encodeURIComponent(eventId) + '/queue' + (token ? '?visitor_token=' + encodeURIComponent(token) : '');
      request(path, 'POST').then(function (a) {
        busy = false;
        store(key, a.visitor_token);
        if (a.status === 'waiting') waiting({ position: a.position, people_ahead: a.people_ahead });
        else if (a.status === 'pre_queue') prequeue({ sale_opens_at: a.sale_opens_at });
        else render(h('p', { text: 'Your turn has come — one moment…' }));
        conn = channel(api, eventId, a.visitor_token, onMessage, onState, function () {
          store(key, null);
          join();
        });
      }, function (err) {
        busy = false;
        if (err.status === 404) fail('This event is not on sale.', false);
        else if (err.code === 'sale_closed') fail('The sale for this event has closed.', false);
        else if (err.status === 429 || err.status === 503) {
          fail('The queue is busy. Trying again in ' + (err.retryAfter || 5) + ' s…', true);
          setTimeout(join, (err.retryAfter || 5) * 1000);
        } else fail(err.message || 'Could not join the queue.', true);
      });
    }

    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(eventId)) {
      fail('This widget is not set up: data-event must be an event id.', false);
      return;
    }
    request(api + '/api/events/' + encodeURIComponent(eventId)).then(function (ev) {
      title.textContent = ev.name;
      when.textContent = wib(ev.starts_at) + ' \u00b7 ' + ev.venue;
      box.setAttribute('aria-label', 'Ticket queue: ' + ev.name);
      (ev.ticket_categories || []).concat(ev.merchandise || []).forEach(function (p) {
        names[p.id] = p.name;
        if (!(p.id in stockLines)) stockLines[p.id] = p.remaining;
      });
      drawStock();
    }, function () { /* names are a nicety; the queue works without them */ });

    // A reload (this tab already has a place): rejoin at once. Otherwise wait for the visitor to ask.
    if (store(key)) join();
    else idle();
  }

  function start() {
    var host = document.getElementById('queue-checkout-widget');
    if (!host || host.shadowRoot) {
      host = document.createElement('div');
      host.className = 'queue-checkout-widget';
      script.after(host);
    }
    mount(host);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start, { once: true });
  else start();
})();
