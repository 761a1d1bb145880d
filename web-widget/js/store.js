// JSON kept in Web Storage, the one way the pages read and write it.
//
// `local` (localStorage: kept across tabs and restarts) and `session` (sessionStorage: this tab only)
// never throw: a missing, broken or unreadable entry reads as null, and storage that is full or disabled
// (private mode) only means the value is not kept, which their callers can live with. `sharedEntry` is
// for the values the page chrome follows (session, cart): it throws like localStorage does, and tells
// this tab and the others when the value changes.

function store(storage) {
  return {
    /** The parsed value under `key`, or null. */
    read(key) {
      try {
        return JSON.parse(storage().getItem(key) || 'null');
      } catch {
        return null;
      }
    },
    /** Keeps `value` as JSON under `key` (null removes it); false when the storage refused. */
    write(key, value) {
      try {
        if (value === null || value === undefined) storage().removeItem(key);
        else storage().setItem(key, JSON.stringify(value));
        return true;
      } catch {
        return false;
      }
    },
  };
}

export const local = store(() => window.localStorage);
export const session = store(() => window.sessionStorage);

/**
 * The localStorage entry `key`, announced as the window event `eventName` whenever this tab writes it;
 * `onChange(fn)` calls `fn` on that and when another tab changes it (the `storage` event).
 */
export function sharedEntry(key, eventName) {
  return {
    read: () => local.read(key),
    /** Keeps `value` (null removes the entry) and tells this tab. */
    write(value) {
      if (value === null) localStorage.removeItem(key);
      else localStorage.setItem(key, JSON.stringify(value));
      window.dispatchEvent(new CustomEvent(eventName));
    },
    onChange(fn) {
      window.addEventListener(eventName, fn);
      window.addEventListener('storage', (e) => {
        if (e.key === key || e.key === null) fn();
      });
    },
  };
}
