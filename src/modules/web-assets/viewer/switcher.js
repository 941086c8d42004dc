/*
 * stackcast viewer, the scope switcher: with several telescopes on this server, a compact
 * list (the lobby, then the other scopes) at the top right; hidden with one. Works at the
 * root (main) and at /s/<id>/, also under a reverse proxy's sub-path.
 */
(function () {
  'use strict';

  var i18n = window.stackcastI18n;
  var t = i18n.t;
  var SCOPE_PATH = /^(.*\/)s\/([a-z0-9][a-z0-9-]{0,31})\/(?:index\.html)?$/;
  /** The list is small and changes rarely: asked again every minute while the page is visible. */
  var REFRESH_MS = 60000;

  var nav = document.getElementById('switcher');
  var list = document.getElementById('switcher-list');
  if (!nav || !list) {
    return;
  }

  /** The server's root path and the scope of this page. */
  var here = (function () {
    var path = window.location.pathname;
    var match = SCOPE_PATH.exec(path);
    return match ? { root: match[1], id: match[2] } : { root: path.slice(0, path.lastIndexOf('/') + 1), id: 'main' };
  })();
  var shownKey = '';

  function href(id) {
    return here.root + (id === 'main' ? '' : 's/' + encodeURIComponent(id) + '/');
  }

  function item(url, text) {
    var li = document.createElement('li');
    var a = document.createElement('a');
    a.href = url;
    a.textContent = text;
    li.append(a);
    return li;
  }

  function render(scopes) {
    var live = scopes.filter(function (s) { return s && typeof s.id === 'string' && typeof s.version === 'number' && s.version > 0; });
    var others = live.filter(function (s) { return s.id !== here.id; });
    if (others.length === 0) {
      nav.hidden = true;
      shownKey = '';
      return;
    }
    var names = others.map(function (s) { return [s.id, typeof s.title === 'string' && s.title !== '' ? s.title : s.id]; });
    var key = JSON.stringify(names);
    if (key !== shownKey) {
      shownKey = key;
      var items = [item(here.root + 'scopes', t('switcher.all'))];
      names.forEach(function (pair) { items.push(item(href(pair[0]), pair[1])); });
      list.replaceChildren.apply(list, items);
    }
    nav.hidden = false;
  }

  function refresh() {
    fetch(here.root + 'api/scopes', { cache: 'no-store' })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (body && Array.isArray(body.scopes)) {
          render(body.scopes);
          nav.dataset.checked = 'true';
        }
      })
      .catch(function () { /* offline: the viewer shows it; the list stays as it was */ });
  }

  i18n.ready.then(function () {
    refresh();
    setInterval(function () {
      if (!document.hidden) {
        refresh();
      }
    }, REFRESH_MS);
  });
})();
