/*
 * stackcast lobby (GET /scopes): one card per live scope, kept up to date over /scopes/ws.
 * A card links to the scope's viewer; its thumbnail is swapped only once the new one is decoded.
 */
(function () {
  'use strict';

  var i18n = window.stackcastI18n;
  var feed = window.stackcastScopes;
  var t = i18n.t;

  var cardsEl = document.getElementById('cards');
  var emptyEl = document.getElementById('lobby-empty');
  var statusEl = document.getElementById('lobby-status');
  /** Cards by scope id: { el, parts, scope, thumbnail }. */
  var cards = new Map();
  var lists = 0;
  var connects = 0;
  var state = 'connecting';
  var relative = null;

  function ageText(at) {
    if (!isFinite(at)) {
      return t('lobby.noImage');
    }
    if (!relative) {
      relative = new Intl.RelativeTimeFormat(i18n.locale, { numeric: 'auto', style: 'short' });
    }
    var seconds = Math.round((at - Date.now()) / 1000);
    if (seconds > -60) {
      return relative.format(Math.min(0, seconds), 'second');
    }
    if (seconds > -3600) {
      return relative.format(Math.round(seconds / 60), 'minute');
    }
    if (seconds > -86400) {
      return relative.format(Math.round(seconds / 3600), 'hour');
    }
    return relative.format(Math.round(seconds / 86400), 'day');
  }

  function metric(list, label, className) {
    var row = document.createElement('div');
    var dt = document.createElement('dt');
    dt.textContent = label;
    var dd = document.createElement('dd');
    dd.className = className;
    row.append(dt, dd);
    list.append(row);
    return dd;
  }

  function newCard(scope) {
    var li = document.createElement('li');
    li.className = 'card';
    li.dataset.scope = scope.id;
    var link = document.createElement('a');
    link.className = 'card-link';
    link.href = feed.href(scope.id);
    var box = document.createElement('span');
    box.className = 'thumb-box';
    var img = document.createElement('img');
    img.className = 'thumb';
    img.alt = '';
    img.decoding = 'async';
    img.hidden = true;
    box.append(img);
    var body = document.createElement('span');
    body.className = 'card-body';
    var title = document.createElement('span');
    title.className = 'card-title';
    var object = document.createElement('span');
    object.className = 'card-object';
    var list = document.createElement('dl');
    list.className = 'card-metrics';
    var parts = {
      link: link,
      img: img,
      title: title,
      object: object,
      stack: metric(list, t('metric.stack'), 'stack'),
      exposure: metric(list, t('metric.exposure'), 'exposure'),
      viewers: metric(list, t('lobby.viewers'), 'viewers'),
      age: metric(list, t('metric.updated'), 'age'),
    };
    body.append(title, object, list);
    link.append(box, body);
    li.append(link);
    return { el: li, parts: parts, scope: null, thumbnail: null, object: null };
  }

  /** Sets the thumbnail once the new one is decoded: the old one stays until then. */
  function setThumbnail(card, url) {
    if (card.thumbnail === url) {
      return;
    }
    card.thumbnail = url;
    if (typeof url !== 'string' || url === '') {
      card.parts.img.hidden = true;
      card.parts.img.removeAttribute('src');
      return;
    }
    var next = new Image();
    next.src = url;
    (next.decode ? next.decode() : Promise.resolve()).then(function () {
      if (card.thumbnail === url) {
        card.parts.img.src = url;
        card.parts.img.hidden = false;
      }
    }, function () { /* pruned meanwhile: the next list brings a newer one */ });
  }

  function fill(card, scope) {
    var p = card.parts;
    var name = typeof scope.title === 'string' && scope.title !== '' ? scope.title : scope.id;
    setText(p.title, name);
    setText(p.stack, typeof scope.stackSize === 'number' ? i18n.number(scope.stackSize) : '–');
    setText(p.exposure, feed.exposure(scope.exposure));
    setText(p.viewers, typeof scope.viewers === 'number' ? i18n.number(scope.viewers) : '–');
    setText(p.age, ageText(feed.updatedAt(scope)));
    setThumbnail(card, scope.thumbnail);
    if (card.object !== scope.object) {
      card.object = scope.object;
      setText(p.object, typeof scope.object === 'string' ? scope.object : '');
      feed.objectLabel(scope.object).then(function (label) {
        if (card.object === scope.object) {
          setText(p.object, label);
        }
      });
    }
    card.scope = scope;
  }

  function setText(el, text) {
    if (el.textContent !== text) {
      el.textContent = text;
    }
  }

  /** The scopes that have shown an image (a scope exists from its first publish; main before it has none). */
  function render(all) {
    var scopes = all.filter(function (s) { return typeof s.version === 'number' && s.version > 0; });
    lists += 1;
    var seen = new Set();
    var added = [];
    scopes.forEach(function (scope, index) {
      seen.add(scope.id);
      var card = cards.get(scope.id);
      if (!card) {
        card = newCard(scope);
        cards.set(scope.id, card);
        if (lists > 1) {
          added.push(typeof scope.title === 'string' && scope.title !== '' ? scope.title : scope.id);
        }
      }
      fill(card, scope);
      if (cardsEl.children[index] !== card.el) {
        cardsEl.insertBefore(card.el, cardsEl.children[index] || null);
      }
    });
    cards.forEach(function (card, id) {
      if (!seen.has(id)) {
        card.el.remove();
        cards.delete(id);
      }
    });
    emptyEl.hidden = cards.size > 0;
    if (added.length > 0) {
      statusEl.textContent = t('lobby.added', { names: added.join(', ') });
    }
  }

  function setState(next) {
    if (next === 'live') {
      connects += 1;
    }
    state = next;
    var text = next === 'live' ? t('conn.live') : next === 'connecting' ? t('conn.connecting') : t('conn.reconnecting');
    setText(statusEl, text);
  }

  /** The ages tick: "12 s ago", then "1 min ago". */
  function tick() {
    cards.forEach(function (card) {
      if (card.scope) {
        setText(card.parts.age, ageText(feed.updatedAt(card.scope)));
      }
    });
  }

  i18n.ready.then(function () {
    feed.connect(render, setState);
    setInterval(tick, 1000);
  });

  /** Read-only state for tests. */
  window.stackcastLobby = Object.freeze({
    get state() { return state; },
    get lists() { return lists; },
    get connects() { return connects; },
    get cards() { return cards.size; },
  });
})();
