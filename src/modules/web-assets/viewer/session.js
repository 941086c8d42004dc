/*
 * stackcast viewer, sessions: operator notices and how many are watching, from the
 * server's hello / viewers / notice messages (viewer.js hands them over).
 * Plain browser JavaScript; loaded deferred, after viewer.js.
 */
(function () {
  'use strict';

  /** Older notices are removed when more than this many are on screen. */
  var MAX_NOTICES = 3;

  var sessionId = null;
  var viewers = null;
  var noticesShown = 0;
  var list = null;
  var count = null;

  function init() {
    var viewer = document.getElementById('viewer');
    var status = document.querySelector('#bar .status');
    if (!viewer || !status) {
      return;
    }
    list = document.createElement('div');
    list.id = 'notices';
    list.className = 'notices';
    list.setAttribute('role', 'status');
    list.setAttribute('aria-live', 'polite');
    viewer.appendChild(list);
    count = document.createElement('span');
    count.id = 'viewer-count';
    count.className = 'watching';
    count.hidden = true;
    status.appendChild(count);
  }

  function onMessage(message) {
    switch (message.type) {
      case 'hello':
        sessionId = typeof message.id === 'string' ? message.id : null;
        setViewers(message.viewers);
        break;
      case 'viewers':
        setViewers(message.count);
        break;
      case 'notice':
        if (typeof message.text === 'string') {
          showNotice(message.text);
        }
        break;
      default:
        break;
    }
  }

  function setViewers(n) {
    if (typeof n !== 'number' || !isFinite(n) || n < 0) {
      return;
    }
    viewers = n;
    if (count) {
      count.textContent = n === 1 ? t('session.watchingOne') : t('session.watchingMany', { n: n });
      count.title = n === 1 ? t('session.onlyOne') : t('session.many', { n: n });
      count.hidden = false;
    }
  }

  function showNotice(text) {
    if (!list) {
      return;
    }
    var card = document.createElement('div');
    card.className = 'notice';
    var p = document.createElement('p');
    // textContent, never innerHTML: the text comes from the network.
    p.textContent = text;
    var close = document.createElement('button');
    close.type = 'button';
    close.className = 'notice-close';
    close.setAttribute('aria-label', t('notice.dismiss'));
    close.textContent = '\u00d7';
    close.addEventListener('click', function () {
      card.remove();
    });
    card.appendChild(p);
    card.appendChild(close);
    list.appendChild(card);
    while (list.children.length > MAX_NOTICES) {
      list.removeChild(list.firstChild);
    }
    noticesShown += 1;
  }

  /** A catalogue text in the visitor's language (i18n.js). */
  function t(key, vars) {
    return window.stackcastI18n ? window.stackcastI18n.t(key, vars) : key;
  }

  init();

  window.stackcastSession = Object.freeze({
    onMessage: onMessage,
    get id() { return sessionId; },
    get viewers() { return viewers; },
    get noticesShown() { return noticesShown; },
  });
})();
