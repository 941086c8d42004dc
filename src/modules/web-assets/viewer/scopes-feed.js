/*
 * stackcast lobby and wall: the live list of scopes over one WebSocket (/scopes/ws sends
 * {"type":"scopes","scopes":[...]} on connect and on each change), reconnected with backoff;
 * while the socket is down the list is asked once per attempt from api/scopes.
 * Both pages are served at the root, so every URL here is relative to it.
 */
(function () {
  'use strict';

  var RETRY_FIRST_MS = 1000;
  var RETRY_MAX_MS = 30000;
  var ID = /^[a-z0-9][a-z0-9-]{0,31}$/;

  /** The scopes of a message or of api/scopes that have a valid id. */
  function valid(list) {
    return Array.isArray(list) ? list.filter(function (s) { return s && typeof s.id === 'string' && ID.test(s.id); }) : null;
  }

  /** Calls onList(scopes) with each list received and onState('connecting'|'live'|'reconnecting'). */
  function connect(onList, onState) {
    var delay = RETRY_FIRST_MS;
    var connects = 0;

    function poll() {
      fetch('api/scopes', { cache: 'no-store' })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (body) {
          var scopes = body && valid(body.scopes);
          if (scopes) {
            onList(scopes);
          }
        })
        .catch(function () { /* the socket's retry tries again */ });
    }

    function open() {
      var url = new URL('scopes/ws', window.location.href);
      url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
      url.search = '';
      url.hash = '';
      onState(connects === 0 ? 'connecting' : 'reconnecting');
      var ws;
      try {
        ws = new WebSocket(url.href);
      } catch (e) {
        retry();
        return;
      }
      ws.onopen = function () {
        connects += 1;
        delay = RETRY_FIRST_MS;
        onState('live');
      };
      ws.onmessage = function (event) {
        var message;
        try {
          message = JSON.parse(event.data);
        } catch (e) {
          return;
        }
        var scopes = message && message.type === 'scopes' ? valid(message.scopes) : null;
        if (scopes) {
          onList(scopes);
        }
      };
      ws.onclose = function () {
        ws.onclose = null;
        onState('reconnecting');
        retry();
      };
    }

    function retry() {
      poll();
      // Jitter, so a restarted hub is not met by every phone in the same second.
      setTimeout(open, delay * (0.75 + Math.random() * 0.5));
      delay = Math.min(delay * 2, RETRY_MAX_MS);
    }

    open();
  }

  /** The scope's folder relative to the root: '' for main (served at the root), else s/<id>/. */
  function base(id) {
    return id === 'main' ? '' : 's/' + encodeURIComponent(id) + '/';
  }

  /** The scope's viewer, relative to the root. */
  function href(id) {
    return id === 'main' ? './' : base(id);
  }

  /** Cumulated exposure as the viewer shows it: H:MM:SS (a string is shown as sent). */
  function exposure(value) {
    if (typeof value === 'string' && value !== '') {
      return value;
    }
    if (typeof value !== 'number' || !isFinite(value)) {
      return '–';
    }
    var total = Math.max(0, Math.round(value));
    var pad = function (n) { return (n < 10 ? '0' : '') + n; };
    return Math.floor(total / 3600) + ':' + pad(Math.floor((total % 3600) / 60)) + ':' + pad(total % 60);
  }

  /** Milliseconds since epoch of a scope's `updated` (ISO string or number); NaN for none. */
  function updatedAt(scope) {
    var u = scope.updated;
    return typeof u === 'number' ? u : typeof u === 'string' ? Date.parse(u) : NaN;
  }

  var lookups = new Map();

  /** "M 42 · Orion Nebula" from the catalogue (api/objects/<name>), or the name as sent. */
  function objectLabel(name) {
    if (typeof name !== 'string' || name === '') {
      return Promise.resolve('');
    }
    if (!lookups.has(name)) {
      lookups.set(name, fetch('api/objects/' + encodeURIComponent(name))
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (entry) {
          if (!entry || typeof entry.id !== 'string') {
            return name;
          }
          var common = Array.isArray(entry.names) && typeof entry.names[0] === 'string' ? entry.names[0] : '';
          return common && common !== entry.id ? entry.id + ' · ' + common : entry.id;
        })
        .catch(function () {
          lookups.delete(name); // the network, not an unknown name: ask again next time
          return name;
        }));
    }
    return lookups.get(name);
  }

  window.stackcastScopes = Object.freeze({
    connect: connect,
    base: base,
    href: href,
    exposure: exposure,
    updatedAt: updatedAt,
    objectLabel: objectLabel,
  });
})();
