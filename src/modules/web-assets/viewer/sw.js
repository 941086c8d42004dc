/*
 * stackcast service worker: keeps the page shell and OpenSeadragon so the viewer opens at
 * once (and offline shows its own "reconnecting" state). The live image, data.json,
 * versioned tiles (/v/), /ws and the API are never touched: they always go to the server.
 */
'use strict';

var CACHE = 'stackcast-shell-v1';
var SHELL = [
  './',
  'index.html',
  'i18n.js',
  'viewer.js',
  'viewer.css',
  'session.js',
  'session.css',
  'secure-origin.js',
  'switcher.js',
  'openseadragon.min.js',
  'favicon.ico',
  'manifest.webmanifest',
  'i18n-en.json',
  'i18n-fr.json',
  'i18n-de.json',
  'i18n-es.json',
  'i18n-it.json',
  'icons/app-192.png',
  'icons/app-512.png',
];

self.addEventListener('install', function (event) {
  event.waitUntil(
    caches.open(CACHE).then(function (cache) {
      return cache.addAll(SHELL);
    }).then(function () {
      return self.skipWaiting();
    }),
  );
});

self.addEventListener('activate', function (event) {
  event.waitUntil(
    caches.keys().then(function (names) {
      return Promise.all(names.filter(function (n) { return n !== CACHE; }).map(function (n) { return caches.delete(n); }));
    }).then(function () {
      return self.clients.claim();
    }),
  );
});

/** Path relative to the worker's folder, so it also works under a reverse proxy's sub-path. */
function shellPath(url) {
  var base = new URL('./', self.location.href);
  if (url.origin !== base.origin || url.pathname.indexOf(base.pathname) !== 0) {
    return null;
  }
  var rel = url.pathname.slice(base.pathname.length);
  if (rel === '') {
    return './';
  }
  // OpenSeadragon's button images are part of the shell; nothing else outside the list is.
  return SHELL.indexOf(rel) >= 0 || /^icons\/[\w-]+\.png$/.test(rel) ? rel : null;
}

self.addEventListener('fetch', function (event) {
  var request = event.request;
  if (request.method !== 'GET') {
    return;
  }
  var url = new URL(request.url);
  var rel = shellPath(url);
  if (rel === null || url.search !== '') {
    return; // not ours: the browser fetches it as if there were no worker
  }
  // Network first, so a new version of the viewer shows at once; the cache when offline.
  event.respondWith(
    fetch(request).then(function (response) {
      if (response.ok) {
        var copy = response.clone();
        caches.open(CACHE).then(function (cache) { return cache.put(request, copy); });
      }
      return response;
    }, function () {
      return caches.match(request).then(function (cached) {
        return cached || Response.error();
      });
    }),
  );
});
