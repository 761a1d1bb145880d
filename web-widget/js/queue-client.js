// The live channel between a waiting visitor and the gateway: WebSocket first, Server-Sent Events when
// WebSocket is unavailable or blocked, and polling GET …/queue/status every 2 s as the last resort.
//
// Exactly one channel is open at a time. A channel that delivered messages and then dropped is reopened
// (same transport) with exponential backoff and jitter; a transport that fails twice in a row without
// delivering anything is given up for the next one. Before reconnecting after a failure the client asks
// /status once, which both refreshes what the visitor sees and tells a refused credential (401, e.g. the
// server's key changed) apart from a blocked transport; on 401 the page is asked to join again.
//
// widget.js carries its own copy of this logic so that it stays a single self-contained file.

export const TRANSPORTS = ['websocket', 'sse', 'polling'];
export const MESSAGE_TYPES = ['position', 'pre_queue', 'admitted', 'stock', 'paused', 'left'];

const POLL_MS = 2000;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30_000;
const FAILURES_BEFORE_FALLBACK = 2;

const supported = {
  websocket: () => typeof globalThis.WebSocket === 'function',
  sse: () => typeof globalThis.EventSource === 'function',
  polling: () => typeof globalThis.fetch === 'function',
};

/** Error of a failed /status or /queue request: HTTP status, API code, Retry-After seconds. */
export class QueueHttpError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message || `HTTP ${status}`);
    this.name = 'QueueHttpError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

function retryAfterSeconds(value) {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

/** Sends a queue request and parses the JSON answer; throws QueueHttpError for error answers. */
export async function queueRequest(url, { method = 'GET', signal, credentials = 'same-origin' } = {}) {
  let res;
  try {
    res = await fetch(url, { method, signal, credentials, cache: 'no-store', headers: { Accept: 'application/json' } });
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new QueueHttpError(0, 'network', 'Could not reach the server.', null);
  }
  const text = await res.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (res.ok) return body;
  const detail = body && body.error && typeof body.error === 'object' ? body.error : {};
  throw new QueueHttpError(res.status, typeof detail.code === 'string' ? detail.code : `http_${res.status}`,
    typeof detail.message === 'string' ? detail.message : '', retryAfterSeconds(res.headers.get('Retry-After')));
}

/**
 * @param {object} options
 * @param {string} options.base        origin of the gateway ('' = this page's origin)
 * @param {string} options.eventId
 * @param {string} options.token       visitor credential from the join answer
 * @param {(msg: object) => void} options.onMessage   every push message ({type, …})
 * @param {(state: {transport: string, phase: 'connecting'|'live'|'retrying'|'stopped', retryInMs?: number}) => void} [options.onState]
 * @param {() => void} [options.onUnauthorized]   the credential was refused: join again, then restart(token)
 * @param {number} [options.pollMs]
 */
export function createQueueChannel({ base = '', eventId, token, onMessage, onState = () => {}, onUnauthorized = () => {}, pollMs = POLL_MS }) {
  const sameOrigin = !base || new URL(base, window.location.href).origin === window.location.origin;
  const credentials = sameOrigin ? 'same-origin' : 'omit';
  let visitor = token;
  let order = [];
  let index = 0;
  let generation = 0; // handlers of a closed channel see a stale generation and do nothing
  let current = null; // { close() }
  let received = false; // the current connection delivered at least one message
  let failures = 0; // consecutive connections of the current transport that delivered nothing
  let attempt = 0; // backoff exponent
  let retryTimer = null;
  let stopped = true;
  let state = { transport: null, phase: 'stopped' };

  const url = (kind) => {
    const u = new URL(`${base.replace(/\/$/, '')}/api/events/${encodeURIComponent(eventId)}/queue/${kind}`, window.location.href);
    u.searchParams.set('visitor_token', visitor);
    return u;
  };

  const setState = (next) => {
    state = next;
    onState({ ...state });
  };

  /** The current connection works: reset the failure count and the backoff. */
  const live = () => {
    if (received) return;
    received = true;
    failures = 0;
    attempt = 0;
    setState({ transport: order[index], phase: 'live' });
  };

  const parse = (data) => {
    let msg;
    try {
      msg = typeof data === 'string' ? JSON.parse(data) : data;
    } catch {
      return null;
    }
    return msg && typeof msg.type === 'string' ? msg : null;
  };

  const deliver = (gen, data) => {
    if (gen !== generation) return;
    const msg = parse(data);
    if (!msg) return;
    live();
    onMessage(msg);
  };

  /** A /status answer: all of its messages, even if one of them (admitted, left) stops the channel. */
  const deliverAll = (body) => {
    for (const m of body && Array.isArray(body.messages) ? body.messages : []) {
      const msg = parse(m);
      if (msg) onMessage(msg);
    }
  };

  const closeCurrent = () => {
    clearTimeout(retryTimer);
    retryTimer = null;
    generation += 1;
    if (current) {
      try {
        current.close();
      } catch {
        /* already closed */
      }
    }
    current = null;
  };

  const backoff = () => {
    const ms = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
    attempt = Math.min(attempt + 1, 10);
    return Math.round(ms * (0.8 + Math.random() * 0.4));
  };

  function openWebSocket(gen) {
    const u = url('ws');
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(u.href);
    ws.onmessage = (e) => deliver(gen, e.data);
    ws.onclose = () => dropped(gen);
    return {
      close() {
        ws.onmessage = null;
        ws.onclose = null;
        ws.onerror = null;
        ws.close(1000);
      },
    };
  }

  function openSse(gen) {
    const es = new EventSource(url('sse').href, { withCredentials: false });
    const handle = (e) => deliver(gen, e.data);
    for (const type of MESSAGE_TYPES) es.addEventListener(type, handle);
    es.onmessage = handle;
    // The browser would reconnect on its own without backoff (or give up silently on an HTTP error);
    // this client decides instead.
    es.onerror = () => dropped(gen);
    return { close: () => es.close() };
  }

  function openPolling(gen) {
    const ctrl = new AbortController();
    let timer = null;
    const tick = async () => {
      try {
        const body = await queueRequest(url('status').href, { signal: ctrl.signal, credentials });
        if (gen !== generation) return;
        live();
        deliverAll(body);
        if (gen !== generation) return; // a message (admitted, left) may have stopped the channel
        timer = setTimeout(tick, pollMs);
      } catch (err) {
        if (gen !== generation || (err && err.name === 'AbortError')) return;
        if (err.status === 401) unauthorized();
        else dropped(gen, err.retryAfter);
      }
    };
    tick();
    return {
      close() {
        clearTimeout(timer);
        ctrl.abort();
      },
    };
  }

  const openers = { websocket: openWebSocket, sse: openSse, polling: openPolling };

  function open() {
    closeCurrent();
    if (stopped) return;
    const gen = generation;
    received = false;
    const transport = order[index];
    setState({ transport, phase: 'connecting' });
    try {
      current = openers[transport](gen);
    } catch {
      // e.g. a WebSocket constructor that throws (blocked by policy)
      current = null;
      dropped(gen);
    }
  }

  /** One /status request while no channel is open: fresh state, and a 401 check. */
  async function checkThen(next) {
    const gen = generation;
    try {
      const body = await queueRequest(url('status').href, { credentials });
      if (gen !== generation || stopped) return;
      deliverAll(body);
    } catch (err) {
      if (gen !== generation || stopped) return;
      if (err.status === 401) {
        unauthorized();
        return;
      }
    }
    if (gen === generation && !stopped) next();
  }

  function dropped(gen, retryAfter) {
    if (gen !== generation || stopped) return;
    const worked = received;
    closeCurrent();
    const transport = order[index];
    if (!worked) failures += 1;
    if (!worked && failures >= FAILURES_BEFORE_FALLBACK && index < order.length - 1) {
      index += 1;
      failures = 0;
      attempt = 0;
      setState({ transport: order[index], phase: 'connecting' });
      if (order[index] === 'polling') open();
      else checkThen(open);
      return;
    }
    const delay = retryAfter ? retryAfter * 1000 : backoff();
    setState({ transport, phase: 'retrying', retryInMs: delay });
    retryTimer = setTimeout(() => {
      if (worked || transport === 'polling') open();
      else checkThen(open);
    }, delay);
  }

  function unauthorized() {
    closeCurrent();
    setState({ transport: order[index], phase: 'stopped' });
    stopped = true;
    onUnauthorized();
  }

  const onOnline = () => {
    if (!stopped && state.phase === 'retrying') open();
  };

  return {
    start() {
      order = TRANSPORTS.filter((t) => supported[t]());
      index = 0;
      failures = 0;
      attempt = 0;
      stopped = false;
      window.addEventListener('online', onOnline);
      open();
    },
    /** Starts again (same transport order) with a new credential, e.g. after joining again. */
    restart(newToken) {
      if (newToken) visitor = newToken;
      this.stop();
      this.start();
    },
    stop() {
      stopped = true;
      window.removeEventListener('online', onOnline);
      closeCurrent();
      setState({ transport: order[index] ?? null, phase: 'stopped' });
    },
    get state() {
      return { ...state };
    },
  };
}
