// The nestjs-api-auth operator console. Plain browser JavaScript, no dependencies.
// Rules this file keeps: the pasted key lives in one variable (never in storage, a
// cookie or a URL); every value from the server reaches the page through textContent
// or a form field's value, never as HTML; every write goes through the guarded routes.
'use strict';

(() => {
  const meta = document.querySelector('meta[name="api-auth-key-header"]');
  const KEY_HEADER = meta && meta.content ? meta.content : 'x-api-key';
  // The script sits at <routes.path>/console/console.js; the routes are two levels up.
  const API_BASE = new URL('..', document.currentScript.src).href.replace(/\/$/, '');
  const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
  const SEARCH_PAGE_LIMIT = 50;
  const scopesMeta = document.querySelector('meta[name="api-auth-write-scopes"]');
  /** The scopes that may write (admin, self-service); a key with neither is read-only. */
  const WRITE_SCOPES = scopesMeta && scopesMeta.content ? scopesMeta.content.split(' ') : [];
  /** How many pages of its owner's keys the console reads to find the pasted key's own record. */
  const SELF_PAGE_LIMIT = 10;

  /** The pasted key: here and nowhere else. */
  let apiKey = null;
  /** The key shown in the details panel, as the server last sent it. */
  let current = null;
  /** Id of the key last shown: a new key resets the cascade choice to the server's default. */
  let shownId = null;
  /** The edit form's values when it was filled, to send only what the operator changed. */
  let editBaseline = null;
  /** Plaintext of a key just issued or rotated, until the operator dismisses it. */
  let secret = null;
  /**
   * Listing state: owner shown, whether across owners and with which filters, cursors of
   * the pages before this one, this and the next page's cursors.
   */
  const listing = { owner: '', all: false, environment: '', status: '', previous: [], cursor: null, next: null, items: [] };

  const $ = (id) => document.getElementById(id);

  class ConsoleError extends Error {
    constructor(status, code, message, field) {
      super(message);
      this.status = status;
      this.code = code;
      this.field = field;
    }
  }

  // ---- messages -------------------------------------------------------------------

  function showError(error) {
    const box = $('error');
    const parts = [];
    if (error instanceof ConsoleError) {
      parts.push(error.status ? `${error.status} ${error.code}` : error.code);
      parts.push(error.message);
      if (error.field) parts.push(`(field: ${error.field})`);
    } else {
      parts.push('console_error', String(error && error.message ? error.message : error));
    }
    box.textContent = parts.join(': ').replace(/: \(field/, ' (field');
    box.hidden = false;
    box.scrollIntoView({ block: 'nearest' });
    setStatus('');
  }

  function clearError() {
    $('error').hidden = true;
    $('error').textContent = '';
  }

  function setStatus(text) {
    $('status').textContent = text;
  }

  /** Whether an action is under way: a second click on "Issue key" must not issue twice. */
  let busy = false;

  /** Runs one operator action at a time: clears the last error, shows the next one. */
  function action(fn) {
    return async (event) => {
      if (event) event.preventDefault();
      if (busy) return;
      busy = true;
      document.body.setAttribute('aria-busy', 'true');
      clearError();
      try {
        await fn(event);
      } catch (error) {
        // A write refused for scope: the key only reads, whatever the page guessed.
        if (error instanceof ConsoleError && error.status === 403 && error.code === 'insufficient_scope' && apiKey !== null) setReadOnly(true);
        showError(error);
      } finally {
        busy = false;
        document.body.removeAttribute('aria-busy');
      }
    };
  }

  // ---- HTTP ---------------------------------------------------------------------

  /** One call to the management routes with the pasted key. Rejects with a ConsoleError carrying the server's code. */
  async function api(method, path, options = {}) {
    if (apiKey === null) throw new ConsoleError(0, 'no_key', 'Paste a key first.');
    const url = new URL(path ? `${API_BASE}/${path}` : API_BASE);
    for (const [name, value] of Object.entries(options.query || {})) url.searchParams.set(name, value);
    const headers = { Accept: 'application/json' };
    headers[KEY_HEADER] = apiKey;
    if (options.body !== undefined) headers['Content-Type'] = 'application/json';
    if (options.ifMatch) headers['If-Match'] = options.ifMatch;
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        cache: 'no-store',
        credentials: 'omit',
        redirect: 'error',
        referrerPolicy: 'no-referrer',
      });
    } catch {
      throw new ConsoleError(0, 'network_error', 'The server did not answer.');
    }
    let data = null;
    const text = response.status === 204 ? '' : await response.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const body = data && typeof data === 'object' ? data : {};
      throw new ConsoleError(
        response.status,
        typeof body.code === 'string' ? body.code : `http_${response.status}`,
        typeof body.message === 'string' ? body.message : response.statusText || 'Request refused.',
        typeof body.field === 'string' ? body.field : undefined,
      );
    }
    return { data, etag: response.headers.get('ETag') };
  }

  const keyPath = (id, suffix = '') => encodeURIComponent(id) + suffix;

  /** The If-Match value for a resource, when the server versions its keys. */
  function ifMatchOf(resource) {
    return typeof resource.version === 'number' ? `"${resource.version}"` : undefined;
  }

  // ---- formatting -------------------------------------------------------------

  /** The state the server would refuse the key for, in its order: revoked, disabled, expired. */
  function statusOf(key) {
    if (key.revokedAt) return 'revoked';
    if (key.disabledAt) return 'disabled';
    if (key.expiresAt && Date.parse(key.expiresAt) <= Date.now()) return 'expired';
    return key.expiresAt ? 'active, expires' : 'active';
  }

  const orNever = (value) => (value === null || value === undefined ? 'never' : String(value));

  function scopesFrom(text) {
    return text.split(/[\s,]+/).filter((scope) => scope.length > 0);
  }

  /** ISO instant to the `YYYY-MM-DDTHH:MM` of a datetime-local field, in local time. */
  function toLocalInput(iso) {
    if (!iso) return '';
    const date = new Date(iso);
    const pad = (n) => String(n).padStart(2, '0');
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
  }

  function fromLocalInput(field, value) {
    if (value === '') return null;
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) throw new ConsoleError(0, 'invalid_input', 'is not a date and time', field);
    return date.toISOString();
  }

  function policyFrom(field, text) {
    if (text.trim() === '') return null;
    try {
      return JSON.parse(text);
    } catch {
      throw new ConsoleError(0, 'invalid_input', 'is not valid JSON', field);
    }
  }

  // ---- the key --------------------------------------------------------------------

  const useKey = action(async () => {
    const input = $('admin-key');
    const value = input.value.trim();
    // The field is emptied at once: from here on the key is only in `apiKey`.
    input.value = '';
    if (value === '') throw new ConsoleError(0, 'no_key', 'Paste a key first.');
    apiKey = value;
    setReadOnly(false);
    forgetView();
    await loadPage(null, []);
    await detectReadOnly();
  });

  /**
   * Finds the pasted key's own record among its owner's keys (by its hint: prefix and
   * last characters) and hides the write controls when it holds no scope that may
   * write. A key not found keeps them: a refused write then switches them off.
   */
  async function detectReadOnly() {
    const key = apiKey;
    let cursor = null;
    let pages = 0;
    do {
      const { data } = await api('GET', '', { query: cursor ? { cursor } : {} });
      const own = data.items.find((item) => {
        const [head, tail] = String(item.hint).split('…');
        return tail !== undefined && tail.length > 0 && key.startsWith(head) && key.endsWith(tail);
      });
      if (own) {
        setReadOnly(!own.scopes.some((scope) => WRITE_SCOPES.includes(scope)));
        return;
      }
      cursor = data.nextCursor;
      pages++;
    } while (cursor && pages < SELF_PAGE_LIMIT);
  }

  /** Hides the write controls while the pasted key may only read (the routes' read scope). */
  function setReadOnly(value) {
    $('write-controls').hidden = value;
    $('issue-section').hidden = value;
    $('read-only-note').hidden = !value;
    $('session').textContent = value
      ? 'A read-only key is in use (held in this page only).'
      : apiKey === null
        ? 'No key in use. Paste one below.'
        : 'A key is in use (held in this page only).';
  }

  function forgetKey() {
    apiKey = null;
    $('admin-key').value = '';
    setReadOnly(false);
    forgetView();
    clearError();
    setStatus('Key forgotten.');
  }

  function forgetView() {
    dismissSecret();
    closeDetails();
    listing.previous = [];
    listing.cursor = null;
    listing.next = null;
    listing.items = [];
    $('key-list').replaceChildren();
    $('list-summary').textContent = '';
    updatePager(false);
  }

  // ---- listing and search ------------------------------------------------------

  function renderList(items) {
    const list = $('key-list');
    list.replaceChildren();
    for (const key of items) {
      const item = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'key-row';
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = key.name;
      const details = document.createElement('span');
      details.className = 'meta';
      const owner = listing.all ? ` · ${key.ownerId}` : '';
      details.textContent = `${key.hint} · ${statusOf(key)}${key.expiresAt && !key.revokedAt ? ` ${key.expiresAt}` : ''}${owner} · ${key.id}`;
      button.append(name, details);
      button.addEventListener('click', () => {
        clearError();
        showDetails(key);
        // Keyboard and screen-reader users land on what they opened.
        $('details-title').focus();
      });
      item.append(button);
      list.append(item);
    }
  }

  function updatePager(enabled) {
    $('prev-page').disabled = !enabled || listing.previous.length === 0;
    $('next-page').disabled = !enabled || !listing.next;
  }

  function listQuery(cursor) {
    const query = {};
    if (listing.all) {
      query.all = 'true';
      if (listing.environment) query.environment = listing.environment;
      if (listing.status) query.status = listing.status;
    }
    if (listing.owner) query.ownerId = listing.owner;
    if (cursor) query.cursor = cursor;
    return query;
  }

  async function loadPage(cursor, previous) {
    const { data } = await api('GET', '', { query: listQuery(cursor) });
    listing.previous = previous;
    listing.cursor = cursor;
    listing.next = data.nextCursor;
    listing.items = data.items;
    renderList(data.items);
    const page = `Page ${previous.length + 1}: ${data.items.length} shown.`;
    if (listing.all) {
      // The listing across owners has no total: counting every key is what it avoids.
      const filters = [listing.owner && `owner ${listing.owner}`, listing.environment && `environment ${listing.environment}`, listing.status]
        .filter(Boolean)
        .join(', ');
      $('list-summary').textContent = `All owners, newest first${filters ? ` (${filters})` : ''}. ${page}`;
    } else {
      const owner = listing.owner || 'your key\'s owner';
      $('list-summary').textContent = `${data.total} key${data.total === 1 ? '' : 's'} of ${owner}. ${page}`;
    }
    updatePager(true);
  }

  /**
   * Search by name (any part, any case) or id. The routes list one owner at a time and
   * have no search, so the console reads the owner's pages, a bounded number of them,
   * and looks an exact id up directly.
   */
  async function search(term) {
    const needle = term.toLowerCase();
    const found = new Map();
    if (ID_PATTERN.test(term)) {
      try {
        const { data } = await api('GET', keyPath(term));
        if (!listing.owner || data.ownerId === listing.owner) found.set(data.id, data);
      } catch (error) {
        if (!(error instanceof ConsoleError) || error.status !== 404) throw error;
      }
    }
    let cursor = null;
    let pages = 0;
    let scanned = 0;
    do {
      const { data } = await api('GET', '', { query: listQuery(cursor) });
      for (const key of data.items) {
        scanned++;
        if (key.name.toLowerCase().includes(needle) || key.id.toLowerCase().includes(needle)) found.set(key.id, key);
      }
      cursor = data.nextCursor;
      pages++;
    } while (cursor && pages < SEARCH_PAGE_LIMIT);
    const items = [...found.values()];
    listing.items = items;
    listing.previous = [];
    listing.next = null;
    renderList(items);
    updatePager(false);
    $('list-summary').textContent =
      `${items.length} match${items.length === 1 ? '' : 'es'} for "${term}" among ${scanned} keys` +
      (cursor ? ' (stopped early: narrow the owner or search by id).' : '.');
  }

  const submitList = action(async () => {
    listing.owner = $('owner').value.trim();
    listing.all = $('all-owners').checked;
    listing.environment = listing.all ? $('filter-environment').value.trim() : '';
    listing.status = listing.all ? $('filter-status').value : '';
    const term = $('search').value.trim();
    if (term) await search(term);
    else await loadPage(null, []);
  });

  const nextPage = action(async () => {
    if (!listing.next) return;
    await loadPage(listing.next, [...listing.previous, listing.cursor]);
  });

  const previousPage = action(async () => {
    if (listing.previous.length === 0) return;
    const previous = listing.previous.slice(0, -1);
    await loadPage(listing.previous[listing.previous.length - 1], previous);
  });

  /** Puts a fresh copy of a key into the list, where it is shown. */
  function replaceInList(key) {
    const index = listing.items.findIndex((item) => item.id === key.id);
    if (index === -1) return;
    listing.items[index] = key;
    renderList(listing.items);
  }

  // ---- details -----------------------------------------------------------------

  function showDetails(key) {
    current = key;
    const rows = [
      ['Name', key.name],
      ['Id', key.id],
      ['Owner', key.ownerId],
      ['Hint', key.hint],
      ['Status', statusOf(key) + (key.expiresAt && !key.revokedAt ? ` ${key.expiresAt}` : '')],
      ['Scopes', key.scopes.join(' ')],
      ['Environment', key.environment === null || key.environment === undefined ? 'default' : key.environment],
      ['Policy', key.policy ? JSON.stringify(key.policy, null, 1) : 'none'],
      ['Expires', orNever(key.expiresAt)],
      ['Last used', orNever(key.lastUsedAt)],
      ['Revoked', key.revokedAt ? key.revokedAt : 'no'],
      ['Disabled', key.disabledAt ? key.disabledAt : 'no'],
      ['Created', key.createdAt],
      ['Updated', key.updatedAt],
      ['Rotated from', key.rotatedFromId ? key.rotatedFromId : 'none'],
    ];
    if ('issuedById' in key) rows.push(['Issued by', key.issuedById ? key.issuedById : 'none']);
    if ('version' in key) rows.push(['Version', String(key.version)]);
    rows.push(['Metadata', JSON.stringify(key.metadata)]);
    const list = $('details');
    list.replaceChildren();
    for (const [term, value] of rows) {
      const dt = document.createElement('dt');
      dt.textContent = term;
      const dd = document.createElement('dd');
      dd.textContent = value;
      list.append(dt, dd);
    }
    editBaseline = {
      name: key.name,
      scopes: key.scopes.join(' '),
      expires: toLocalInput(key.expiresAt),
      policy: key.policy ? JSON.stringify(key.policy, null, 2) : '',
    };
    $('edit-name').value = editBaseline.name;
    $('edit-scopes').value = editBaseline.scopes;
    $('edit-expires').value = editBaseline.expires;
    $('edit-policy').value = editBaseline.policy;
    $('rotate-name').value = '';
    // The cascade choice exists where the server versions keys (both came in one change).
    $('cascade-field').hidden = !('version' in key);
    // Disable while enabled, enable while disabled; neither once revoked (that is final).
    const switchable = 'disabledAt' in key && !key.revokedAt;
    $('disable-key').hidden = !switchable || Boolean(key.disabledAt);
    $('enable-key').hidden = !switchable || !key.disabledAt;
    $('status-help').hidden = !switchable;
    if (key.id !== shownId) $('revoke-cascade').checked = true;
    shownId = key.id;
    $('details-title').textContent = 'Key details: ';
    const titleName = document.createElement('span');
    titleName.textContent = key.name;
    $('details-title').append(titleName);
    $('details-section').hidden = false;
  }

  function closeDetails() {
    current = null;
    editBaseline = null;
    $('details').replaceChildren();
    $('details-section').hidden = true;
  }

  function requireCurrent() {
    if (!current) throw new ConsoleError(0, 'no_key_selected', 'Choose a key first.');
    return current;
  }

  /** Shows the key as the server now has it, in the details and in the list. */
  function refreshed(key) {
    showDetails(key);
    replaceInList(key);
  }

  const reloadDetails = action(async () => {
    const key = requireCurrent();
    const { data } = await api('GET', keyPath(key.id));
    refreshed(data);
    setStatus('Key reloaded.');
  });

  const saveEdit = action(async () => {
    const key = requireCurrent();
    const changes = {};
    const name = $('edit-name').value;
    const scopes = $('edit-scopes').value;
    const expires = $('edit-expires').value;
    const policy = $('edit-policy').value;
    if (name !== editBaseline.name) changes.name = name.trim();
    if (scopes !== editBaseline.scopes) changes.scopes = scopesFrom(scopes);
    if (expires !== editBaseline.expires) changes.expiresAt = fromLocalInput('expiresAt', expires);
    if (policy !== editBaseline.policy) changes.policy = policyFrom('policy', policy);
    if (Object.keys(changes).length === 0) {
      setStatus('Nothing to change.');
      return;
    }
    const { data } = await api('PATCH', keyPath(key.id), { body: changes, ifMatch: ifMatchOf(key) });
    refreshed(data);
    setStatus(`Saved ${Object.keys(changes).join(', ')}.`);
  });

  const rotate = action(async () => {
    const key = requireCurrent();
    const minutes = Number($('grace-minutes').value);
    if (!Number.isSafeInteger(minutes) || minutes < 0) {
      throw new ConsoleError(0, 'invalid_input', 'must be a whole number of minutes', 'gracePeriodMs');
    }
    const body = { gracePeriodMs: minutes * 60_000 };
    const name = $('rotate-name').value.trim();
    if (name) body.name = name;
    const { data } = await api('POST', keyPath(key.id, '/rotate'), { body });
    showSecret(data.key);
    replaceInList(data.previous);
    showDetails(data.apiKey);
    setStatus(`Rotated. The old key works until ${orNever(data.previous.expiresAt)}.`);
  });

  const revoke = action(async () => {
    const key = requireCurrent();
    if (!window.confirm(`Revoke the key "${key.name}"? It stops working at once, for good.`)) return;
    const options = { ifMatch: ifMatchOf(key) };
    if (!$('cascade-field').hidden) options.query = { cascade: $('revoke-cascade').checked ? 'true' : 'false' };
    const { data } = await api('POST', keyPath(key.id, '/revoke'), options);
    refreshed(data);
    setStatus('Key revoked.');
  });

  /** Disables or enables the key shown, at the version shown. */
  function setDisabled(disabled) {
    return action(async () => {
      const key = requireCurrent();
      if (disabled && !window.confirm(`Disable the key "${key.name}"? It is refused until enabled again.`)) return;
      const { data } = await api('POST', keyPath(key.id, disabled ? '/disable' : '/enable'), { ifMatch: ifMatchOf(key) });
      refreshed(data);
      setStatus(disabled ? 'Key disabled.' : 'Key enabled.');
    });
  }

  const remove = action(async () => {
    const key = requireCurrent();
    if (!window.confirm(`Delete the key "${key.name}"? Its record is removed for good.`)) return;
    await api('DELETE', keyPath(key.id));
    listing.items = listing.items.filter((item) => item.id !== key.id);
    renderList(listing.items);
    closeDetails();
    setStatus('Key deleted.');
  });

  // ---- issuing -------------------------------------------------------------------

  const issue = action(async () => {
    const body = { name: $('issue-name').value.trim(), scopes: scopesFrom($('issue-scopes').value) };
    const owner = $('issue-owner').value.trim();
    if (owner) body.ownerId = owner;
    const expires = $('issue-expires').value;
    if (expires) body.expiresAt = fromLocalInput('expiresAt', expires);
    const environment = $('issue-environment').value.trim();
    if (environment) body.environment = environment;
    const policy = $('issue-policy').value;
    if (policy.trim()) body.policy = policyFrom('policy', policy);
    const { data } = await api('POST', '', { body });
    showSecret(data.key);
    showDetails(data.apiKey);
    $('issue-form').reset();
    setStatus(`Issued "${data.apiKey.name}" for ${data.apiKey.ownerId}.`);
  });

  function showSecret(key) {
    secret = key;
    $('secret-value').textContent = key;
    $('secret-panel').hidden = false;
    $('copy-secret').focus();
  }

  function dismissSecret() {
    secret = null;
    $('secret-value').textContent = '';
    $('secret-panel').hidden = true;
  }

  const copySecret = action(async () => {
    if (secret === null) return;
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(secret);
    } else {
      // Plain HTTP on another host: select the text for the operator's own copy.
      const range = document.createRange();
      range.selectNodeContents($('secret-value'));
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      document.execCommand('copy');
    }
    setStatus('Key copied to the clipboard.');
  });

  // ---- wiring --------------------------------------------------------------------

  $('key-form').addEventListener('submit', useKey);
  $('forget-key').addEventListener('click', forgetKey);
  $('list-form').addEventListener('submit', submitList);
  $('next-page').addEventListener('click', nextPage);
  $('prev-page').addEventListener('click', previousPage);
  $('refresh-details').addEventListener('click', reloadDetails);
  $('close-details').addEventListener('click', closeDetails);
  $('edit-form').addEventListener('submit', saveEdit);
  $('rotate-form').addEventListener('submit', rotate);
  $('revoke-form').addEventListener('submit', revoke);
  $('delete-key').addEventListener('click', remove);
  $('disable-key').addEventListener('click', setDisabled(true));
  $('enable-key').addEventListener('click', setDisabled(false));
  $('all-owners').addEventListener('change', () => {
    $('all-filters').hidden = !$('all-owners').checked;
  });
  $('issue-form').addEventListener('submit', issue);
  $('copy-secret').addEventListener('click', copySecret);
  $('dismiss-secret').addEventListener('click', dismissSecret);
})();
