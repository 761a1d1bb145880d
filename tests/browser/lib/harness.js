// Test harness: a gateway process with its own database and Redis prefix, and a headless Debian Chromium
// driven by playwright-core over the DevTools protocol.
//
// Each test file calls useSite() once: its gateway (startGateway) and Chromium (launchBrowser) are started
// before the file's tests and stopped after them; the database is dropped and the Redis keys of the run
// are deleted at the end. `useSite({ midtrans: true })` also starts the fake Midtrans (tests/fake-midtrans)
// and points the gateway's payment settings at it. A test runs its visitors with withVisitors().

import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));

/** The repository root, found from this file (tests/browser/lib → ../../..). */
export const REPO_ROOT = path.resolve(here, '..', '..', '..');
export const WEB_DIR = path.join(REPO_ROOT, 'web-widget');
export const GATEWAY_BIN = path.resolve(process.env.GATEWAY_BIN || path.join(REPO_ROOT, 'target', 'debug', 'gateway'));
export const FAKE_MIDTRANS_BIN = path.resolve(process.env.FAKE_MIDTRANS_BIN || path.join(REPO_ROOT, 'target', 'debug', 'fake-midtrans'));
export const CHROMIUM_BIN = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const SHOTS_DIR = process.env.SHOTS_DIR || '/tmp/browser-shots';

const PG_BASE = 'postgres://postgres@127.0.0.1:5432';
const REDIS_URL = 'redis://127.0.0.1:6379';

const hex = (bytes) => randomBytes(bytes).toString('hex');

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Everything a child may print, kept for the failure message. */
class LogTail {
  constructor(max = 300) {
    this.max = max;
    this.lines = [];
  }
  push(line) {
    this.lines.push(line);
    if (this.lines.length > this.max) this.lines.shift();
  }
  toString() {
    return this.lines.join('\n');
  }
}

// Children still running when the test process exits abnormally (a crash, Ctrl-C) are killed here.
// They run in their own process groups, so a terminal's Ctrl-C would not reach them otherwise.
const live = new Set();
function killLive() {
  for (const child of live) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  live.clear();
}
process.on('exit', killLive);
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]]) {
  process.once(signal, () => {
    killLive();
    process.exit(code);
  });
}

function waitForExit(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** SIGTERM to the child's process group, SIGKILL if it has not exited after `graceMs`. */
async function terminate(child, graceMs = 10_000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) {
    live.delete(child);
    return;
  }
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    child.kill('SIGTERM');
  }
  if (!(await waitForExit(child, graceMs))) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
    await waitForExit(child, 5_000);
  }
  live.delete(child);
}

/**
 * Starts the fake Midtrans (Snap and Core API stand-in) on a free port with a random sandbox server key,
 * and reads its address from the stdout line "fake-midtrans listening on http://IP:PORT".
 */
export async function startFakeMidtrans() {
  const serverKey = `SB-Mid-server-test-${hex(12)}`;
  const logs = new LogTail();
  const env = {
    PATH: process.env.PATH || '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME || os.tmpdir(),
    ...(process.env.RUST_LOG ? { RUST_LOG: process.env.RUST_LOG } : {}),
  };
  const child = spawn(FAKE_MIDTRANS_BIN, ['--addr', '127.0.0.1:0', '--server-key', serverKey, '--fast-retries'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  live.add(child);

  const fake = {
    serverKey,
    logs,
    baseURL: null,
    /** PUT /_fake/config (e.g. where to send payment notifications). */
    async configure(config) {
      const res = await fetch(`${fake.baseURL}/_fake/config`, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(config),
      });
      if (!res.ok) throw new Error(`fake-midtrans refused its config: ${res.status} ${await res.text()}. Log:\n${logs}`);
    },
    async stop() {
      await terminate(child, 5_000);
    },
  };

  try {
    let timer;
    const listening = new Promise((resolve, reject) => {
      const onLine = (line) => {
        logs.push(line);
        const m = line.match(/fake-midtrans listening on (https?:\/\/[^\s/]+)/);
        if (m) resolve(m[1]);
      };
      readline.createInterface({ input: child.stdout }).on('line', onLine);
      readline.createInterface({ input: child.stderr }).on('line', onLine);
      child.once('error', (err) => reject(new Error(`cannot start ${FAKE_MIDTRANS_BIN}: ${err.message} (build it, or set FAKE_MIDTRANS_BIN)`)));
      child.once('exit', (code, signal) =>
        reject(new Error(`fake-midtrans exited before listening (code ${code}, signal ${signal}). Log:\n${logs}`)));
      timer = setTimeout(() => reject(new Error(`fake-midtrans did not say where it listens within 30 s. Log:\n${logs}`)), 30_000);
    });
    fake.baseURL = await listening.finally(() => clearTimeout(timer));
  } catch (err) {
    await fake.stop();
    throw err;
  }
  return fake;
}

/**
 * Starts `gateway local` (the gateway with the admission controller and the checkout worker in one
 * process) with a fresh database, reads its port from the JSON log line "gateway listening", and waits
 * until /readyz answers 200. `extraEnv` adds or overrides environment variables (e.g. CORS_ORIGINS).
 *
 * With `midtrans: true` the fake Midtrans is started first, the gateway gets its address and server key
 * (MIDTRANS_*), and once the gateway listens the fake is told to send its payment notifications to the
 * gateway's webhook. `gateway.midtrans` is then `{ baseURL, serverKey, logs, configure(config) }`.
 */
export async function startGateway({ extraEnv = {}, midtrans = false } = {}) {
  const fake = midtrans ? await startFakeMidtrans() : null;
  const dbName = `qc_browser_${hex(8)}`;
  const redisPrefix = `browser-${hex(6)}:`;
  const admin = { email: 'admin@example.com', password: `admin-${hex(8)}` };
  const env = {
    PATH: process.env.PATH || '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME || os.tmpdir(),
    DATABASE_URL: `${PG_BASE}/${dbName}`,
    REDIS_URL,
    REDIS_KEY_PREFIX: redisPrefix,
    HTTP_ADDR: '127.0.0.1:0',
    LOG_FORMAT: 'json',
    DEMO_DATA: 'true',
    BOOTSTRAP_ADMIN_EMAIL: admin.email,
    BOOTSTRAP_ADMIN_PASSWORD: admin.password,
    WEB_DIR,
    CORS_ORIGINS: 'http://127.0.0.1',
    ...(fake
      ? {
          MIDTRANS_SERVER_KEY: fake.serverKey,
          MIDTRANS_CLIENT_KEY: 'SB-Mid-client-test',
          MIDTRANS_API_BASE_URL: fake.baseURL,
          MIDTRANS_SNAP_BASE_URL: `${fake.baseURL}/snap/v1`,
        }
      : {}),
    ...extraEnv,
  };
  const logs = new LogTail();
  const child = spawn(GATEWAY_BIN, ['local'], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  live.add(child);

  const gateway = {
    dbName,
    redisPrefix,
    admin,
    logs,
    baseURL: null,
    midtrans: fake,
    async stop() {
      await terminate(child);
      if (fake) await fake.stop();
      await dropDatabase(dbName);
      await deleteRedisKeys(redisPrefix);
    },
  };

  const listening = new Promise((resolve, reject) => {
    const onLine = (line) => {
      logs.push(line);
      let entry;
      try {
        entry = JSON.parse(line);
      } catch {
        return;
      }
      const fields = entry && entry.fields;
      if (fields && fields.message === 'gateway listening' && typeof fields.addr === 'string') resolve(fields.addr);
    };
    readline.createInterface({ input: child.stdout }).on('line', onLine);
    readline.createInterface({ input: child.stderr }).on('line', onLine);
    child.once('error', (err) => reject(new Error(`cannot start ${GATEWAY_BIN}: ${err.message}`)));
    child.once('exit', (code, signal) =>
      reject(new Error(`gateway exited before listening (code ${code}, signal ${signal}). Log:\n${logs}`)));
  });

  try {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`gateway did not log "gateway listening" within 120 s. Log:\n${logs}`)), 120_000);
    });
    const addr = await Promise.race([listening, timeout]).finally(() => clearTimeout(timer));
    const port = Number(addr.split(':').pop());
    if (!Number.isInteger(port) || port <= 0) throw new Error(`unexpected listening address ${addr}`);
    gateway.baseURL = `http://127.0.0.1:${port}`;
    await waitReady(gateway.baseURL, logs);
    if (fake) await fake.configure({ notification_url: `${gateway.baseURL}/api/webhooks/midtrans` });
  } catch (err) {
    await gateway.stop().catch(() => {});
    throw err;
  }
  return gateway;
}

async function waitReady(baseURL, logs) {
  const deadline = Date.now() + 60_000;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${baseURL}/readyz`);
      if (res.status === 200) return;
      last = `${res.status} ${await res.text()}`;
    } catch (err) {
      last = err.message;
    }
    await sleep(200);
  }
  throw new Error(`/readyz did not answer 200 within 60 s (last: ${last}). Log:\n${logs}`);
}

async function dropDatabase(dbName) {
  if (!/^qc_browser_[0-9a-f]+$/.test(dbName)) throw new Error(`refusing to drop ${dbName}`);
  await run('psql', [`${PG_BASE}/postgres`, '-v', 'ON_ERROR_STOP=1', '-q', '-c', `drop database if exists "${dbName}" with (force)`]);
}

/** Best effort: removes this run's Redis keys when redis-cli is installed. */
async function deleteRedisKeys(prefix) {
  try {
    const { stdout } = await run('redis-cli', ['-u', REDIS_URL, '--scan', '--pattern', `${prefix}*`]);
    const keys = stdout.split('\n').filter(Boolean);
    for (let i = 0; i < keys.length; i += 200) {
      await run('redis-cli', ['-u', REDIS_URL, 'del', ...keys.slice(i, i + 200)]);
    }
  } catch {
    /* no redis-cli, or nothing to delete */
  }
}

/**
 * Starts Debian's Chromium headless with a fresh --user-data-dir and connects playwright-core to it.
 * Returns `{ browser, close }`; `browser.newContext()` gives isolated visitors (own localStorage).
 */
export async function launchBrowser() {
  const userDataDir = await mkdtemp(path.join(os.tmpdir(), 'qc-chromium-'));
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    `--user-data-dir=${userDataDir}`,
    '--remote-debugging-address=127.0.0.1',
    '--remote-debugging-port=0',
    '--no-first-run',
    '--no-default-browser-check',
    '--window-size=1280,900',
    'about:blank',
  ];
  const logs = new LogTail(100);
  const child = spawn(CHROMIUM_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  live.add(child);

  const cleanup = async () => {
    await terminate(child, 5_000);
    await rm(userDataDir, { recursive: true, force: true });
  };

  try {
    const endpoint = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Chromium did not open its DevTools port within 60 s. Output:\n${logs}`)), 60_000);
      readline.createInterface({ input: child.stderr }).on('line', (line) => {
        logs.push(line);
        const m = line.match(/DevTools listening on (ws:\/\/\S+)/);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`cannot start ${CHROMIUM_BIN}: ${err.message}`));
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`Chromium exited (code ${code}) before it was ready. Output:\n${logs}`));
      });
    });
    const browser = await chromium.connectOverCDP(endpoint);
    return {
      browser,
      async close() {
        await browser.close().catch(() => {});
        await cleanup();
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/**
 * The gateway and Chromium of this test file, set by useSite() before its tests (each test file runs in a
 * process of its own, and importers see these bindings change).
 */
export let gateway = null;
export let chrome = null;

/**
 * Starts the gateway (`startGateway(options)`) and Chromium before the file's tests, and stops both after
 * them. `options` may be an (async) function, called first, for what has to be there before the gateway
 * starts; `ready()` runs once both are up. (One hook: Node 20 runs a file's top-level `before` hooks at
 * the same time, not one after the other.)
 */
export function useSite(options = {}, { ready } = {}) {
  before(async () => {
    gateway = await startGateway(typeof options === 'function' ? await options() : options);
    chrome = await launchBrowser();
    if (ready) await ready();
  });
  after(async () => {
    await chrome?.close();
    await gateway?.stop();
  });
}

/**
 * Runs `fn(...visitors)` with `count` fresh visitors of the site (newVisitor) and closes them afterwards,
 * whatever happened. When the test fails, the fake Midtrans's log (if the site has one) is added to the
 * error.
 */
export async function withVisitors(count, fn) {
  const visitors = [];
  try {
    for (let i = 0; i < count; i++) visitors.push(await newVisitor(chrome.browser, gateway.baseURL));
    return await fn(...visitors);
  } catch (err) {
    if (gateway?.midtrans && err instanceof Error) err.message += `\n--- fake-midtrans log:\n${gateway.midtrans.logs}`;
    throw err;
  } finally {
    for (const v of visitors) await v.context.close();
  }
}

/** A fresh visitor: its own context (cookies, localStorage) and page, with page errors recorded. */
export async function newVisitor(browser, baseURL) {
  const context = await browser.newContext({ baseURL, viewport: { width: 1280, height: 900 }, locale: 'en-GB' });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  return { context, page, errors };
}

export async function screenshot(page, name) {
  await mkdir(SHOTS_DIR, { recursive: true });
  const file = path.join(SHOTS_DIR, `${name}.png`);
  // From the top, so the sticky header sits where a person sees it.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** JSON API call from the test itself (for setting up data that is not under test); `headers` adds to the request's. */
export async function apiCall(baseURL, method, pathname, { token, body, headers: extra } = {}) {
  const headers = { Accept: 'application/json', ...extra };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${baseURL}${pathname}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/**
 * One Redis command on a connection of its own (RESP over a socket, no client library), for putting state
 * in place that a browser cannot cause, e.g. a payment notification that failed every attempt. Resolves
 * with the reply (a simple string, an integer, a bulk string or null); rejects on an error reply.
 */
export function redisCommand(...args) {
  const url = new URL(REDIS_URL);
  const request = Buffer.concat([
    Buffer.from(`*${args.length}\r\n`),
    ...args.flatMap((a) => {
      const b = Buffer.from(String(a));
      return [Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n')];
    }),
  ]);
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    let settled = false;
    const socket = net.createConnection({ host: url.hostname, port: Number(url.port) || 6379 });
    const finish = (err, value) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    socket.setTimeout(10_000, () => finish(new Error(`redis did not answer ${args[0]} within 10 s`)));
    socket.on('error', (err) => finish(err));
    socket.on('connect', () => socket.write(request));
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      const eol = received.indexOf('\r\n');
      if (eol < 0) return;
      const kind = String.fromCharCode(received[0]);
      const head = received.subarray(1, eol).toString();
      if (kind === '+') finish(null, head);
      else if (kind === '-') finish(new Error(`redis ${args[0]}: ${head}`));
      else if (kind === ':') finish(null, Number(head));
      else if (kind === '$') {
        const n = Number(head);
        if (n < 0) finish(null, null);
        else if (received.length >= eol + 2 + n + 2) finish(null, received.subarray(eol + 2, eol + 2 + n).toString());
      } else finish(new Error(`redis ${args[0]}: reply of type ${kind} not understood here`));
    });
  });
}
