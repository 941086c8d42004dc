/*
 * stackcast viewer on HTTPS: keeps the screen awake while the page is visible, and makes
 * the page installable (manifest, service worker for the page shell). On plain HTTP
 * none of this is attempted: browsers allow it on secure origins only.
 */
(function () {
  'use strict';

  var secure = window.location.protocol === 'https:' && window.isSecureContext === true;
  var wake = { supported: false, requests: 0, held: false, error: null };
  var worker = { state: secure ? 'pending' : 'skipped', error: null };

  function acquireWakeLock() {
    if (!wake.supported || wake.held || document.visibilityState !== 'visible') {
      return;
    }
    wake.requests += 1;
    navigator.wakeLock.request('screen').then(function (sentinel) {
      wake.held = true;
      wake.error = null;
      // The browser releases the lock when the page is hidden; visibilitychange takes it again.
      sentinel.addEventListener('release', function () {
        wake.held = false;
      });
    }, function (err) {
      wake.error = (err && err.name) || 'Error';
    });
  }

  if (secure) {
    var manifest = document.createElement('link');
    manifest.rel = 'manifest';
    manifest.href = 'manifest.webmanifest';
    document.head.appendChild(manifest);

    wake.supported = !!(navigator.wakeLock && typeof navigator.wakeLock.request === 'function');
    document.addEventListener('visibilitychange', acquireWakeLock);
    acquireWakeLock();

    if ('serviceWorker' in navigator) {
      navigator.serviceWorker.register('sw.js').then(function (registration) {
        worker.state = 'registered';
        worker.scope = registration.scope;
      }, function (err) {
        worker.state = 'failed';
        worker.error = (err && err.message) || String(err);
      });
    } else {
      worker.state = 'unsupported';
    }
  }

  window.stackcastSecure = Object.freeze({
    get secure() { return secure; },
    get wakeLock() { return Object.assign({}, wake); },
    get serviceWorker() { return Object.assign({}, worker); },
  });
})();
