/*
 * stackcast viewer: the latest live-stacked image with deep zoom, kept up to date over /ws.
 *
 * Plain browser JavaScript, no build step. Loaded in <head> (not deferred) so a remembered
 * night mode applies before the first paint; the viewer itself starts on DOMContentLoaded,
 * after the deferred openseadragon.min.js.
 *
 * Every URL is relative, so the page also works behind a reverse proxy under a sub-path.
 */
(function () {
  'use strict';

  var NIGHT_KEY = 'stackcast.nightMode';

  /**
   * First reconnect delay after a lost connection; doubles on each failure up to RETRY_MAX_MS.
   * A connection counts as working, and the delay starts again from here, only once it has
   * stayed open STABLE_AFTER_MS: a server or proxy that accepts and at once drops the socket
   * must not get a reconnect (and a data.json and image request) every second from every phone.
   */
  var RETRY_BASE_MS = 1000;
  var STABLE_AFTER_MS = 10000;
  /** After {"type":"disconnect"} the server is stopping on purpose: try again, but slowly. */
  var STOPPED_RETRY_BASE_MS = 3000;
  var RETRY_MAX_MS = 10000;
  /** A handshake still pending after this long (phone changing networks) is abandoned. */
  var CONNECT_TIMEOUT_MS = 8000;
  /**
   * A download that hangs (Wi-Fi lost mid-transfer) must not block newer images forever: it is
   * abandoned when no byte has arrived for this long. There is no limit on the whole download,
   * so a phone on a slow link still finishes a large image instead of starting it over.
   */
  var STALL_TIMEOUT_MS = 10000;
  /** Swap anyway if OpenSeadragon never reports the new image fully drawn (should not happen). */
  var SWAP_TIMEOUT_MS = 15000;
  /** Hidden longer than this (phone locked), the socket may be dead without knowing it: reconnect. */
  var STALE_AFTER_HIDDEN_MS = 15000;
  /** A version that failed to open (pruned, network) is looked up again after this, doubling. */
  var VERSION_RETRY_MS = 1000;
  /** Tiles of the shown version failing (pruned while zoomed in): look for a newer one at most this often. */
  var TILE_FAILURE_RECHECK_MS = 5000;
  /** The flip-book's pace: ~4 frames/s, or 1 frame/s with prefers-reduced-motion. */
  var PLAY_STEP_MS = 250;
  var PLAY_STEP_REDUCED_MS = 1000;

  applyNightMode(readNightMode());

  // ---------------------------------------------------------------- state

  /** 'connecting' | 'live' | 'reconnecting' | 'stopped' */
  var state = 'connecting';
  var socket = null;
  var retryTimer = 0;
  var retryAttempt = 0;
  var stableTimer = 0;
  var nextRetryAt = 0;
  var stoppedByServer = false;
  var connects = 0;
  var lastConnectedAt = 0;
  var hiddenSince = 0;
  var received = { new_image: 0, hello: 0, disconnect: 0, ignored: 0 };

  // Image pipeline. Each trigger (new_image, connect, page visible) takes the next sequence
  // number; loads run one at a time in that order, and a load only swaps in when its number
  // is above the one on screen, so an older image never replaces a newer one.
  var requestedSeq = 0;
  var startedSeq = 0;
  var shownSeq = 0;
  var imagesShown = 0;
  var pumping = false;
  var shownEtag = null;
  var lastStamp = 0;
  var lastImageAt = 0;
  var metrics = { stackSize: null, exposure: null };
  /** data.json says UPDATED: null: the server shows its waiting image, nothing was published yet. */
  var waitingForFirst = false;
  var blobUrls = new Map();

  // Versions (servers that announce them): the pyramid of `latestVersion` is opened at
  // opacity 0 and shown once fully drawn; a newer version abandons a load under way.
  var latestVersion = 0;
  var shownVersion = 0;
  var shownItem = null;
  var loading = null; // { version, item }
  var versionsShown = 0;
  var versionFailures = 0;
  var versionRetryTimer = 0;
  var lastTileRecheck = 0;
  /** data.json of a version not shown yet: applied when that version is. */
  var pendingData = null;

  // The object card: one catalogue look-up per distinct name (a promise of the entry or null).
  var objectName = null;
  var objectLookups = new Map();

  // The timeline: the night's frames (/api/history, oldest first) and the one scrubbed to
  // (its version; 0 = live). A new image never moves a visitor who scrubbed back.
  var frames = [];
  var scrubVersion = 0;
  var playTimer = 0;
  /** New images came since the frames were loaded: reloaded when the visitor reaches for the timeline. */
  var historyStale = false;
  var historyRequest = null;
  var historyAgain = false;

  var viewer = null;
  var els = {};
  /** Languages (i18n.js): the viewer starts once the visitor's catalogue is in. */
  var i18n = window.stackcastI18n;

  document.addEventListener('DOMContentLoaded', function () {
    (i18n ? i18n.ready : Promise.resolve()).then(start);
  });

  function start() {
    els = {
      viewer: byId('viewer'),
      connText: byId('conn-text'),
      stackSize: byId('stack-size'),
      exposure: byId('exposure'),
      updated: byId('updated'),
      stopped: byId('stopped'),
      night: byId('night-toggle'),
      share: byId('share-button'),
      shareDialog: byId('share-dialog'),
      shareQr: byId('share-qr'),
      shareUrl: byId('share-url'),
      shareTitle: byId('share-title'),
      shareWifi: byId('share-wifi'),
      shareWifiQr: byId('share-wifi-qr'),
      shareSsid: byId('share-ssid'),
      save: byId('save-button'),
      objectCard: byId('object-card'),
      objectName: byId('object-name'),
      objectType: byId('object-type'),
      objectDistance: byId('object-distance'),
      objectLight: byId('object-light'),
      timeline: byId('timeline'),
      range: byId('timeline-range'),
      play: byId('timeline-play'),
      liveChip: byId('live-chip'),
      historyView: byId('history-view'),
      historyImage: byId('history-image'),
      historyCaption: byId('history-caption'),
    };

    viewer = window.OpenSeadragon({
      element: els.viewer,
      prefixUrl: 'icons/',
      // The 2D canvas drawer: predictable on every phone, and readable for the night filter.
      drawer: 'canvas',
      preserveViewport: true,
      showNavigator: false,
      showRotationControl: false,
      showFlipControl: false,
      showSequenceControl: false,
      showFullPageControl: true,
      blendTime: 0,
      // prefers-reduced-motion: zoom and pan jump instead of gliding.
      animationTime: prefersReducedMotion() ? 0 : 0.8,
      minZoomImageRatio: 0.8,
      // Let people look at single stars, a few screen pixels per image pixel.
      maxZoomPixelRatio: 4,
      visibilityRatio: 0.5,
      crossOriginPolicy: false,
      // Only the level that fits the screen, not every coarser one first: the swap waits for
      // a complete frame anyway, and a crowded hotspot pays for every byte.
      immediateRender: true,
      // A tile level is drawn once each of its pixels covers at least 0.7 device pixels
      // (OpenSeadragon counts device pixels): at most ~1.4x the pixels the screen can show.
      minPixelRatio: 0.7,
      gestureSettingsTouch: { pinchToZoom: true, flickEnabled: true, dblClickToZoom: true },
    });
    viewer.world.addHandler('remove-item', function (event) {
      var url = blobUrls.get(event.item);
      if (url) {
        blobUrls.delete(event.item);
        URL.revokeObjectURL(url);
      }
      if (event.item === shownItem) {
        shownItem = null;
      }
    });
    viewer.addHandler('tile-load-failed', function (event) {
      if (loading && event.tiledImage === loading.item) {
        // A version that cannot be drawn whole is never shown half: try again, or a newer one.
        retryVersionLater();
        return;
      }
      // The shown version may have been pruned while zoomed in: what is drawn stays, and
      // the latest version is looked up (data.json), at most every few seconds.
      if (event.tiledImage === shownItem && Date.now() - lastTileRecheck > TILE_FAILURE_RECHECK_MS) {
        lastTileRecheck = Date.now();
        requestImage();
      }
    });

    makeButtonsKeyboardFriendly();

    els.night.addEventListener('click', function () {
      var on = !document.documentElement.classList.contains('night');
      applyNightMode(on);
      try {
        localStorage.setItem(NIGHT_KEY, on ? 'on' : 'off');
      } catch (e) { /* private mode: not remembered */ }
    });
    els.share.addEventListener('click', openShare);
    els.save.addEventListener('click', save);
    var freshen = function () {
      if (historyStale) {
        historyStale = false;
        refreshHistory();
      }
    };
    els.timeline.addEventListener('focusin', freshen);
    els.timeline.addEventListener('pointerdown', freshen);
    els.range.addEventListener('input', function () {
      stopPlaying();
      scrubTo(Number(els.range.value));
    });
    els.play.addEventListener('click', function () {
      if (playTimer) {
        stopPlaying();
      } else {
        startPlaying();
      }
    });
    els.liveChip.addEventListener('click', function () {
      stopPlaying();
      goLive();
    });
    els.shareDialog.addEventListener('click', function (event) {
      if (event.target === els.shareDialog) {
        closeShare();
      }
    });
    syncNightButton();

    document.addEventListener('visibilitychange', onVisibilityChange);
    window.addEventListener('pageshow', function (event) {
      if (event.persisted) {
        wakeUp();
      }
    });
    window.addEventListener('online', wakeUp);

    exposeTestHook();
    render();
    setInterval(tick, 1000);
    requestImage();
    refreshHistory();
    connect();
  }

  // ------------------------------------------------------------ connection

  function wsUrl() {
    var url = new URL('ws', window.location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.search = '';
    url.hash = '';
    return url.href;
  }

  function connect() {
    clearRetry();
    clearStable();
    if (socket) {
      var old = socket;
      socket = null;
      detach(old);
      try {
        old.close();
      } catch (e) { /* already closed */ }
    }
    if (state !== 'stopped') {
      setState(connects === 0 ? 'connecting' : 'reconnecting');
    }

    var ws;
    try {
      ws = new WebSocket(wsUrl());
    } catch (e) {
      scheduleRetry();
      return;
    }
    socket = ws;
    var handshakeTimer = setTimeout(function () {
      if (ws.readyState === WebSocket.CONNECTING) {
        ws.close();
      }
    }, CONNECT_TIMEOUT_MS);

    ws.onopen = function () {
      clearTimeout(handshakeTimer);
      if (socket !== ws) {
        return;
      }
      connects += 1;
      lastConnectedAt = Date.now();
      // Not retryAttempt = 0 yet: only once this connection has proved it stays up.
      stableTimer = setTimeout(function () {
        stableTimer = 0;
        if (socket === ws) {
          retryAttempt = 0;
        }
      }, STABLE_AFTER_MS);
      stoppedByServer = false;
      setState('live');
      // A new_image may have been missed while away: catch up now.
      requestImage();
    };
    ws.onmessage = function (event) {
      if (socket === ws) {
        onMessage(event.data);
      }
    };
    ws.onclose = function () {
      clearTimeout(handshakeTimer);
      if (socket !== ws) {
        return;
      }
      clearStable();
      socket = null;
      scheduleRetry();
    };
    // An error is always followed by close, which does the work.
    ws.onerror = function () {};
  }

  function detach(ws) {
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    ws.onerror = null;
  }

  function onMessage(data) {
    var message = null;
    try {
      message = typeof data === 'string' ? JSON.parse(data) : null;
    } catch (e) {
      message = null;
    }
    var type = message && typeof message === 'object' ? message.type : undefined;
    switch (type) {
      case 'new_image':
        received.new_image += 1;
        if (isVersion(message.version)) {
          // Open the version at once; data.json (its metrics) comes alongside.
          noteVersion(message.version);
        }
        requestImage();
        // Every phone would fetch the night's list on every image: only while it is in use
        // (scrubbed back, playing) or still empty; else when the visitor reaches for it.
        if (scrubVersion || playTimer || frames.length === 0) {
          refreshHistory();
        } else {
          historyStale = true;
          renderTimeline();
        }
        break;
      case 'hello':
        received.hello += 1;
        // The version on the server now: opened at once when it is newer than what is shown.
        if (isVersion(message.version)) {
          noteVersion(message.version);
        }
        notifySession(message);
        break;
      case 'viewers':
      case 'notice':
        notifySession(message);
        break;
      case 'disconnect':
        received.disconnect += 1;
        stoppedByServer = true;
        setState('stopped');
        // The server waits for its clients to leave before stopping: leave at once.
        if (socket) {
          socket.close(1000);
        }
        break;
      default:
        // Unknown or future messages are not ours to act on.
        received.ignored += 1;
    }
  }

  /** Sessions: the viewer count and operator notices (session.js). */
  function notifySession(message) {
    if (window.stackcastSession) {
      window.stackcastSession.onMessage(message);
    }
  }

  function scheduleRetry() {
    clearRetry();
    var base = stoppedByServer ? STOPPED_RETRY_BASE_MS : RETRY_BASE_MS;
    var delay = Math.min(RETRY_MAX_MS, base * Math.pow(2, retryAttempt));
    // Jitter, so fifty phones do not all knock at the same millisecond when the server returns.
    delay = Math.round(delay * (0.85 + Math.random() * 0.3));
    retryAttempt += 1;
    nextRetryAt = Date.now() + delay;
    retryTimer = setTimeout(connect, delay);
    setState(stoppedByServer ? 'stopped' : 'reconnecting');
  }

  function clearStable() {
    if (stableTimer) {
      clearTimeout(stableTimer);
      stableTimer = 0;
    }
  }

  function clearRetry() {
    if (retryTimer) {
      clearTimeout(retryTimer);
      retryTimer = 0;
    }
    nextRetryAt = 0;
  }

  function onVisibilityChange() {
    if (document.visibilityState === 'hidden') {
      hiddenSince = Date.now();
      return;
    }
    var longHidden = hiddenSince > 0 && Date.now() - hiddenSince > STALE_AFTER_HIDDEN_MS;
    hiddenSince = 0;
    if (longHidden && socket && socket.readyState === WebSocket.OPEN) {
      // After a long sleep the socket can look open and be dead: start a fresh one.
      connect();
    } else {
      wakeUp();
    }
  }

  /** The user is looking (page visible again, network back): reconnect and refresh at once. */
  function wakeUp() {
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      retryAttempt = 0;
      connect();
    } else {
      requestImage();
    }
  }

  // --------------------------------------------------------------- images

  /**
   * Asks for the current image and data.json. The image request is conditional on the ETag
   * on screen: a reconnect with nothing new, or a new_image that only changed the metrics,
   * costs a 304 instead of a download.
   */
  function requestImage() {
    requestedSeq += 1;
    pump();
  }

  // One load at a time; requests arriving meanwhile collapse into one more load of the newest.
  // Cancelling the running download instead would starve a slow phone when images come faster
  // than it can download them.
  function pump() {
    if (pumping) {
      return;
    }
    pumping = true;
    (async function () {
      try {
        while (requestedSeq > startedSeq) {
          var seq = requestedSeq;
          startedSeq = seq;
          try {
            await refresh(seq);
          } catch (e) {
            console.warn('[stackcast] image refresh failed:', e && e.message ? e.message : e);
          }
        }
      } finally {
        pumping = false;
      }
    })();
  }

  async function refresh(seq) {
    var stamp = nextStamp();
    var dataPromise = fetchBody('data.json?t=' + stamp, {}, 'json').then(function (result) {
      return result.body;
    }, function () {
      return null;
    });
    // data.json names the version on disk; only a server without versions (ALS, or no
    // image yet) makes the viewer download the whole web_image.jpg.
    var first = await dataPromise;
    if (first && isVersion(first.VERSION)) {
      if (first.VERSION < shownVersion) {
        forgetVersions(); // a new web folder: its numbering started again
      }
      if (first.VERSION <= shownVersion) {
        applyMetrics(first);
      } else {
        pendingData = first;
      }
      noteVersion(first.VERSION);
      return;
    }
    if (first && latestVersion > 0) {
      // The server has no version now (restarted with its waiting image): show what it has.
      forgetVersions();
    }
    var headers = {};
    if (shownEtag) {
      headers['If-None-Match'] = shownEtag;
    }
    var image = await fetchBody('web_image.jpg?t=' + stamp, { headers: headers }, 'blob');
    var data = await dataPromise;
    if (image.response.status === 304) {
      applyMetrics(data);
      return;
    }
    if (!image.response.ok) {
      applyMetrics(data);
      throw new Error('web_image.jpg: HTTP ' + image.response.status);
    }
    if (latestVersion > 0) {
      return; // a version arrived meanwhile: it wins over the plain image
    }
    var shown = await swapIn(image.body, seq);
    if (shown) {
      shownEtag = image.response.headers.get('ETag');
      lastImageAt = Date.now() - serverSideAge(image.response);
      applyMetrics(data);
    }
  }

  /**
   * fetch, reading the body ('json' | 'blob') of a 2xx answer. Aborted when nothing arrives
   * for STALL_TIMEOUT_MS: waiting for the answer, or between two chunks of the body (each
   * chunk restarts the wait). However long the whole download takes is fine.
   * 'no-store': the cache-busting URLs would otherwise pile up in a phone's cache all night.
   */
  async function fetchBody(url, init, kind) {
    var controller = new AbortController();
    var timer = 0;
    function armStallTimer() {
      clearTimeout(timer);
      timer = setTimeout(function () {
        controller.abort();
      }, STALL_TIMEOUT_MS);
    }
    armStallTimer();
    try {
      var response = await fetch(url, Object.assign({ cache: 'no-store', signal: controller.signal }, init));
      var body = null;
      if (response.ok) {
        armStallTimer();
        var blob = await readBody(response, armStallTimer);
        body = kind === 'json' ? JSON.parse(await blob.text()) : blob;
      }
      return { response: response, body: body };
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The whole body as a Blob, read chunk by chunk so that `onChunk` can tell the caller bytes
   * are still coming. An abort of the fetch rejects the pending read.
   */
  async function readBody(response, onChunk) {
    var type = response.headers.get('Content-Type') || '';
    if (!response.body || typeof response.body.getReader !== 'function') {
      // No streams (very old browsers): one read; the stall timer then bounds the whole of it.
      return response.blob();
    }
    var reader = response.body.getReader();
    var chunks = [];
    for (;;) {
      var part = await reader.read();
      if (part.done) {
        break;
      }
      onChunk();
      chunks.push(part.value);
    }
    return new Blob(chunks, { type: type });
  }

  /** Strictly increasing cache-busting number, unique across page loads too. */
  function nextStamp() {
    lastStamp = Math.max(Date.now(), lastStamp + 1);
    return lastStamp;
  }

  /** How old the image is by the server's own clock (the phone's clock may be off at a dark site). */
  function serverSideAge(response) {
    var modified = Date.parse(response.headers.get('Last-Modified') || '');
    var now = Date.parse(response.headers.get('Date') || '');
    if (isNaN(modified) || isNaN(now)) {
      return 0;
    }
    return Math.max(0, now - modified);
  }

  function isVersion(value) {
    return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
  }

  /** A version exists on the server: open it when it is newer than anything seen. */
  function noteVersion(version) {
    if (version > latestVersion) {
      latestVersion = version;
      versionFailures = 0;
    }
    openLatestVersion();
  }

  /**
   * Opens `v/<latest>/image.dzi` hidden, with preload, so OpenSeadragon fetches the tiles of
   * the current view; shows it once fully drawn. A load of an older version is abandoned:
   * the newest always wins, and a phone waking up goes straight to it.
   */
  function openLatestVersion() {
    var version = latestVersion;
    if (version <= shownVersion || (loading && loading.version >= version)) {
      return;
    }
    if (loading) {
      abandonLoading();
    }
    clearTimeout(versionRetryTimer);
    var homeBefore = viewer.world.getItemCount() > 0 ? viewer.viewport.getHomeBounds() : null;
    var attempt = { version: version, item: null };
    loading = attempt;
    addHiddenItem(
      'v/' + version + '/image.dzi',
      function (event) {
        if (loading !== attempt) {
          viewer.world.removeItem(event.item);
          return;
        }
        attempt.item = event.item;
        if (viewer.world.getItemCount() === 1) {
          // Nothing on screen yet: fit the view now, so the tiles loaded are the home view's.
          viewer.viewport.goHome(true);
        }
        whenDrawable(event.item).then(function (complete) {
          if (loading !== attempt) {
            return;
          }
          if (complete) {
            showVersion(attempt, homeBefore);
          } else {
            retryVersionLater();
          }
        });
      },
      function () {
        if (loading === attempt) {
          // Pruned before this phone got to it, or the network: ask data.json for the latest.
          retryVersionLater();
        }
      },
    );
  }

  function retryVersionLater() {
    abandonLoading();
    versionFailures += 1;
    clearTimeout(versionRetryTimer);
    var delay = Math.min(RETRY_MAX_MS, VERSION_RETRY_MS * Math.pow(2, versionFailures - 1));
    versionRetryTimer = setTimeout(requestImage, delay);
  }

  function forgetVersions() {
    abandonLoading();
    clearTimeout(versionRetryTimer);
    latestVersion = 0;
    shownVersion = 0;
    pendingData = null;
  }

  function abandonLoading() {
    var attempt = loading;
    loading = null;
    if (attempt && attempt.item && viewer.world.getIndexOfItem(attempt.item) !== -1) {
      viewer.world.removeItem(attempt.item);
    }
  }

  /**
   * Makes the loaded hidden `item` the one on screen: opaque, every other image removed in
   * the same task. The view is fitted to it only when it was at home (`homeBefore`) before.
   */
  function reveal(item, homeBefore) {
    var atHome = !homeBefore || sameBounds(viewer.viewport.getBounds(), homeBefore);
    item.setPreload(false);
    item.setOpacity(1);
    for (var i = viewer.world.getItemCount() - 1; i >= 0; i -= 1) {
      var other = viewer.world.getItemAt(i);
      if (other !== item) {
        viewer.world.removeItem(other);
      }
    }
    if (atHome) {
      // Nobody has zoomed yet: fit the new image, whose shape may differ (waiting image -> camera).
      viewer.viewport.goHome(true);
    }
  }

  function showVersion(attempt, homeBefore) {
    var item = attempt.item;
    loading = null;
    if (viewer.world.getIndexOfItem(item) === -1) {
      return;
    }
    reveal(item, homeBefore);
    shownItem = item;
    shownVersion = attempt.version;
    // Plain-image loads requested before now are older than this version.
    shownSeq = Math.max(shownSeq, requestedSeq);
    versionsShown += 1;
    imagesShown += 1;
    versionFailures = 0;
    lastImageAt = Date.now();
    if (pendingData && pendingData.VERSION === attempt.version) {
      applyMetrics(pendingData);
      pendingData = null;
    }
    // A newer version may have been announced while this one was drawing.
    openLatestVersion();
  }

  /**
   * Double buffering with OpenSeadragon's world: the new image is added on top, invisible
   * (opacity 0) but loading (preload), at the same place (x 0, y 0, width 1). Once it is fully
   * loaded for the current view it becomes opaque and the old one is removed in the same task,
   * so the next frame shows the new image complete: no blank frame. The viewport (zoom and pan)
   * is left alone, except when it was exactly at home: then the new image is fitted, in case
   * its shape differs. (OpenSeadragon's own `replace: true` removes the old image as soon as
   * the new one's source is ready, before its tiles are drawn: one blank frame per image.)
   * Resolves false when the image was not shown.
   */
  async function swapIn(blob, seq) {
    var url = URL.createObjectURL(blob);
    // The home view of what is on screen now: adding the new image changes the world's home.
    var homeBefore = viewer.world.getItemCount() > 0 ? viewer.viewport.getHomeBounds() : null;
    var item;
    try {
      item = await addHidden(url);
    } catch (e) {
      URL.revokeObjectURL(url);
      throw e;
    }
    blobUrls.set(item, url);
    await whenDrawable(item);

    // A version that came meanwhile wins: revealing this plain image would also remove it
    // from the world while it loads hidden, and it would then never show.
    if (seq <= shownSeq || latestVersion > 0 || viewer.world.getIndexOfItem(item) === -1) {
      viewer.world.removeItem(item);
      return false;
    }
    reveal(item, homeBefore);
    shownSeq = seq;
    imagesShown += 1;
    return true;
  }

  /** Adds `tileSource` on top of what is shown, invisible but loading, at the same place. */
  function addHiddenItem(tileSource, success, error) {
    viewer.addTiledImage({ tileSource: tileSource, x: 0, y: 0, width: 1, opacity: 0, preload: true, success: success, error: error });
  }

  function addHidden(url) {
    return new Promise(function (resolve, reject) {
      addHiddenItem(
        { type: 'image', url: url, buildPyramid: true },
        function (event) {
          resolve(event.item);
        },
        function (event) {
          reject(new Error((event && event.message) || 'OpenSeadragon could not open the image'));
        },
      );
    });
  }

  /** Resolves true once `item` is fully drawn, false after SWAP_TIMEOUT_MS without (page visible). */
  function whenDrawable(item) {
    return new Promise(function (resolve) {
      var done = false;
      var timer = 0;
      function finish(complete) {
        if (!done) {
          done = true;
          clearTimeout(timer);
          resolve(complete);
        }
      }
      function arm() {
        timer = setTimeout(function () {
          // While the page is hidden OpenSeadragon does not animate, so it cannot finish:
          // wait on, rather than swap in an image that would show blank when the page returns.
          if (document.hidden) {
            arm();
          } else {
            finish(false);
          }
        }, SWAP_TIMEOUT_MS);
      }
      arm();
      item.whenFullyLoaded(function () {
        finish(true);
      });
    });
  }

  function sameBounds(a, b) {
    var tolerance = b.width * 1e-3;
    return Math.abs(a.x - b.x) < tolerance && Math.abs(a.y - b.y) < tolerance &&
      Math.abs(a.width - b.width) < tolerance && Math.abs(a.height - b.height) < tolerance;
  }

  function applyMetrics(data) {
    if (!data || typeof data !== 'object') {
      return;
    }
    var size = Number(data.STACK_SIZE);
    if (Number.isFinite(size)) {
      metrics.stackSize = size;
    }
    if (typeof data.EXPO === 'string') {
      metrics.exposure = data.EXPO;
    }
    // Only a server that writes UPDATED says so (ALS's data.json has no such key).
    if ('UPDATED' in data) {
      waitingForFirst = data.UPDATED === null;
    }
    showObject(typeof data.OBJECT === 'string' && data.OBJECT.trim() !== '' ? data.OBJECT.trim() : null);
    render();
  }

  // ------------------------------------------------------------------- UI

  function setState(next) {
    state = next;
    render();
  }

  function render() {
    if (!els.viewer) {
      return;
    }
    els.viewer.dataset.state = state;
    els.stopped.hidden = state !== 'stopped';
    // Only real changes: both are polite live regions, re-announced on every write.
    setText(els.connText, connectionText());
    setText(els.stackSize, metrics.stackSize === null ? '–' : formatNumber(metrics.stackSize));
    els.exposure.textContent = metrics.exposure === null ? '–' : metrics.exposure;
    els.updated.textContent = waitingForFirst ? t('status.waiting') : lastImageAt ? formatAge(Date.now() - lastImageAt) : '–';
    renderTimeline();
  }

  function setText(el, text) {
    if (el.textContent !== text) {
      el.textContent = text;
    }
  }

  function prefersReducedMotion() {
    return typeof window.matchMedia === 'function' && window.matchMedia('(prefers-reduced-motion: reduce)').matches;
  }

  /**
   * OpenSeadragon's zoom, home and full-page buttons are plain divs: give them the tab order,
   * a role and their tooltip as name; Enter is OpenSeadragon's own, Space is added here.
   */
  function makeButtonsKeyboardFriendly() {
    var buttons = viewer.buttonGroup ? viewer.buttonGroup.buttons : [];
    buttons.forEach(function (button) {
      var el = button.element;
      el.tabIndex = 0;
      el.setAttribute('role', 'button');
      el.setAttribute('aria-label', button.tooltip);
      el.classList.add('osd-button');
      el.addEventListener('keydown', function (event) {
        if (event.key === ' ') {
          event.preventDefault();
          button.raiseEvent('click', { originalEvent: event });
        }
      });
    });
  }

  function connectionText() {
    var retryIn = nextRetryAt ? Math.max(1, Math.ceil((nextRetryAt - Date.now()) / 1000)) : 0;
    switch (state) {
      case 'live':
        return t('conn.live');
      case 'connecting':
        return t('conn.connecting');
      case 'reconnecting':
        return retryIn ? t('conn.offlineRetry', { n: retryIn }) : t('conn.reconnecting');
      case 'stopped':
        return retryIn ? t('conn.stoppedRetry', { n: retryIn }) : t('conn.stoppedRetrying');
      default:
        return state;
    }
  }

  function formatAge(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) {
      return t('age.seconds', { n: s });
    }
    var m = Math.floor(s / 60);
    if (m < 60) {
      return t('age.minutes', { n: m });
    }
    return t('age.hours', { h: Math.floor(m / 60), m: m % 60 });
  }

  /** The text of a catalogue key in the visitor's language (i18n.js); the key itself without one. */
  function t(key, vars) {
    return i18n ? i18n.t(key, vars) : key;
  }

  function formatNumber(n) {
    return i18n ? i18n.number(n) : String(n);
  }

  function tick() {
    if (!document.hidden) {
      render();
    }
  }

  function readNightMode() {
    try {
      return localStorage.getItem(NIGHT_KEY) === 'on';
    } catch (e) {
      return false;
    }
  }

  function applyNightMode(on) {
    document.documentElement.classList.toggle('night', on);
    syncNightButton();
  }

  function syncNightButton() {
    var button = document.getElementById('night-toggle');
    if (button) {
      button.setAttribute('aria-pressed', String(document.documentElement.classList.contains('night')));
    }
  }

  function openShare() {
    els.shareUrl.textContent = pageUrl();
    els.shareQr.src = 'qr.svg?t=' + nextStamp();
    // The QR code holds the advertised address (the LAN one, even when this screen
    // opened localhost): show that address in words when the server tells it.
    // /status answers 503 with the same body while stopped, hence no check of `ok`.
    fetch('status', { cache: 'no-store' })
      .then(function (response) { return response.json(); })
      .then(function (status) {
        if (status && typeof status.url === 'string' && /^https?:\/\//.test(status.url)) {
          els.shareUrl.textContent = status.url;
        }
        showWifiStep(status && status.wifi && typeof status.wifi.ssid === 'string' ? status.wifi.ssid : null);
      })
      .catch(function () { /* keep this page's own address */ });
    if (typeof els.shareDialog.showModal === 'function') {
      els.shareDialog.showModal();
    } else {
      els.shareDialog.setAttribute('open', '');
    }
  }

  /** With WIFI_SSID, the dialog has two steps: join the hotspot (its QR code), then open the page. */
  function showWifiStep(ssid) {
    els.shareWifi.hidden = ssid === null;
    els.shareDialog.classList.toggle('two-steps', ssid !== null);
    els.shareTitle.textContent = t(ssid === null ? 'share.title' : 'share.pageStep');
    if (ssid !== null) {
      els.shareSsid.textContent = ssid;
      els.shareWifiQr.alt = t('share.wifiAlt', { ssid: ssid });
      els.shareWifiQr.src = 'qr-wifi.svg?t=' + nextStamp();
    }
  }

  function closeShare() {
    if (typeof els.shareDialog.close === 'function') {
      els.shareDialog.close();
    } else {
      els.shareDialog.removeAttribute('open');
    }
  }

  function pageUrl() {
    return window.location.origin + window.location.pathname;
  }

  // ---------------------------------------------------------- object card

  /** Shows the catalogue's card for `name` (hidden for none, or a name the catalogue does not know). */
  function showObject(name) {
    if (name === objectName) {
      return;
    }
    objectName = name;
    if (name === null) {
      els.objectCard.hidden = true;
      return;
    }
    if (!objectLookups.has(name)) {
      objectLookups.set(name, fetch('api/objects/' + encodeURIComponent(name))
        .then(function (response) { return response.ok ? response.json() : null; })
        .catch(function () {
          objectLookups.delete(name); // the network, not an unknown name: ask again next time
          return null;
        }));
    }
    objectLookups.get(name).then(function (entry) {
      if (objectName === name) {
        fillObjectCard(entry);
      }
    });
  }

  function fillObjectCard(entry) {
    if (!entry || typeof entry.id !== 'string') {
      els.objectCard.hidden = true;
      return;
    }
    var common = Array.isArray(entry.names) && typeof entry.names[0] === 'string' ? entry.names[0] : '';
    els.objectName.textContent = common && common !== entry.id ? entry.id + ' · ' + common : entry.id;
    var typeKey = 'type.' + entry.typeKey;
    var type = typeof entry.typeKey === 'string' && t(typeKey) !== typeKey ? t(typeKey) : typeof entry.type === 'string' ? entry.type : '';
    var place = typeof entry.constellation === 'string' ? entry.constellation : '';
    els.objectType.textContent = type && place ? t('object.typeIn', { type: type, constellation: place }) : type || place;
    els.objectType.hidden = !type && !place;
    var ly = typeof entry.distanceLy === 'number' && entry.distanceLy > 0 ? entry.distanceLy : 0;
    els.objectDistance.hidden = !ly;
    els.objectLight.hidden = !ly;
    if (ly) {
      // "2,6 millions d'années": a number in words takes another grammar in some languages.
      var words = { d: compactNumber(ly), years: compactNumber(ly) };
      var large = ly >= 1e6;
      els.objectDistance.textContent = large ? t('object.distanceLarge', words) : t('object.distance', words);
      els.objectLight.textContent = large ? t('object.lightLarge', words) : t('object.light', words);
    }
    els.objectCard.hidden = false;
  }

  /** 1 344 / 2.5 million / 2,5 Millionen: a large number as words, in the visitor's locale. */
  function compactNumber(n) {
    var locale = i18n ? i18n.locale : 'en';
    try {
      if (n >= 1e6) {
        return new Intl.NumberFormat(locale, { notation: 'compact', compactDisplay: 'long', maximumSignificantDigits: 2 }).format(n);
      }
      return new Intl.NumberFormat(locale, { maximumSignificantDigits: n >= 1e4 ? 3 : 4 }).format(n);
    } catch (e) {
      return String(n);
    }
  }

  // ----------------------------------------------------------------- save

  /**
   * Save: the system share sheet with the image file where the browser can share files
   * (Web Share API level 2, phones), else a download. Falls back to web_image.jpg without versions.
   */
  async function save() {
    var version = shownVersion;
    var url = version ? 'v/' + version + '/image.jpg?download=1' : 'web_image.jpg';
    if (typeof navigator.canShare === 'function' && typeof navigator.share === 'function' && typeof File === 'function') {
      try {
        var response = await fetch(url, { cache: 'no-store' });
        if (response.ok) {
          var blob = await response.blob();
          var file = new File([blob], fileNameFrom(response.headers.get('Content-Disposition')) || fallbackFileName(), { type: 'image/jpeg' });
          if (navigator.canShare({ files: [file] })) {
            await navigator.share({ files: [file] });
            return;
          }
        }
      } catch (e) {
        if (e && e.name === 'AbortError') {
          return; // the visitor closed the share sheet
        }
        console.warn('[stackcast] share failed, downloading instead:', e && e.message ? e.message : e);
      }
    }
    var link = document.createElement('a');
    link.href = url;
    link.download = fallbackFileName(); // the server's Content-Disposition name wins
    link.hidden = true;
    document.body.appendChild(link);
    link.click();
    link.remove();
  }

  /** The file name of a Content-Disposition header (filename* first), or ''. */
  function fileNameFrom(header) {
    if (!header) {
      return '';
    }
    var extended = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(header);
    if (extended) {
      try {
        return decodeURIComponent(extended[1].trim());
      } catch (e) { /* malformed: the plain name */ }
    }
    var plain = /filename\s*=\s*"([^"]*)"/i.exec(header) || /filename\s*=\s*([^;]+)/i.exec(header);
    return plain ? plain[1].trim() : '';
  }

  /** `<object or stackcast>-<date>-stack<N>.jpg`, as the server names it. */
  function fallbackFileName() {
    var at = lastImageAt ? new Date(lastImageAt) : new Date();
    var pad = function (n) { return String(n).padStart(2, '0'); };
    var date = at.getFullYear() + '-' + pad(at.getMonth() + 1) + '-' + pad(at.getDate());
    var object = (objectName || 'stackcast').replace(/[\\/:*?"<>|;\s]+/g, '_');
    return object + '-' + date + '-stack' + (metrics.stackSize === null ? 0 : metrics.stackSize) + '.jpg';
  }

  // ------------------------------------------------------------- timeline

  /** Reloads the night's frames (small JSON); one request at a time, one more if asked meanwhile. */
  function refreshHistory() {
    if (historyRequest) {
      historyAgain = true;
      return;
    }
    historyRequest = fetch('api/history', { cache: 'no-store' })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        frames = body && Array.isArray(body.frames) ? body.frames.filter(function (f) { return f && isVersion(f.version); }) : [];
        if (scrubVersion && frameIndex(scrubVersion) === null) {
          goLive(); // the frame scrubbed to was thinned away
        }
        renderTimeline();
      })
      .catch(function () { /* no history (ALS, HISTORY_BUDGET_MB=0): no timeline */ })
      .then(function () {
        historyRequest = null;
        if (historyAgain) {
          historyAgain = false;
          refreshHistory();
        }
      });
  }

  /** Index of `version` in frames, or null. */
  function frameIndex(version) {
    for (var i = 0; i < frames.length; i += 1) {
      if (frames[i].version === version) {
        return i;
      }
    }
    return null;
  }

  function scrubTo(index) {
    var frame = frames[index];
    if (!frame || index === frames.length - 1) {
      goLive();
      return;
    }
    scrubVersion = frame.version;
    els.historyImage.src = 'h/' + frame.version + '.jpg';
    var next = frames[index + 1];
    if (next) {
      new Image().src = 'h/' + next.version + '.jpg'; // the flip-book's next page, ahead of time
    }
    renderTimeline();
  }

  function goLive() {
    scrubVersion = 0;
    els.historyImage.removeAttribute('src');
    renderTimeline();
  }

  function startPlaying() {
    if (frames.length < 2) {
      return;
    }
    var index = scrubVersion ? frameIndex(scrubVersion) : null;
    scrubTo(index === null || index >= frames.length - 2 ? 0 : index);
    playTimer = setInterval(function () {
      var at = scrubVersion ? frameIndex(scrubVersion) : null;
      if (at === null || at + 1 >= frames.length - 1) {
        stopPlaying();
        goLive();
      } else {
        scrubTo(at + 1);
      }
    }, prefersReducedMotion() ? PLAY_STEP_REDUCED_MS : PLAY_STEP_MS);
    renderTimeline();
  }

  function stopPlaying() {
    if (playTimer) {
      clearInterval(playTimer);
      playTimer = 0;
      renderTimeline();
    }
  }

  function frameText(frame) {
    return t('timeline.frame', { n: Number(frame.stackSize) || 0, time: formatTime(frame.at) });
  }

  function formatTime(at) {
    var date = new Date(at);
    if (isNaN(date.getTime())) {
      return '';
    }
    try {
      return new Intl.DateTimeFormat(i18n ? i18n.locale : 'en', { hour: '2-digit', minute: '2-digit', second: '2-digit' }).format(date);
    } catch (e) {
      return date.toLocaleTimeString();
    }
  }

  function renderTimeline() {
    if (!els.timeline) {
      return;
    }
    // One frame and a newer image: already two moments to move between.
    els.timeline.hidden = frames.length < 2 && !(frames.length === 1 && historyStale);
    var index = scrubVersion ? frameIndex(scrubVersion) : null;
    var scrubbed = index !== null;
    var max = Math.max(0, frames.length - 1);
    els.range.max = String(max);
    els.range.value = String(scrubbed ? index : max);
    var valueText = scrubbed ? frameText(frames[index]) : t('timeline.live');
    if (els.range.getAttribute('aria-valuetext') !== valueText) {
      els.range.setAttribute('aria-valuetext', valueText);
    }
    els.historyView.hidden = !scrubbed;
    setText(els.historyCaption, scrubbed ? frameText(frames[index]) : '');
    els.historyCaption.hidden = !scrubbed;
    els.liveChip.hidden = !scrubbed;
    setText(els.liveChip, t('timeline.liveStack', { n: metrics.stackSize === null ? 0 : metrics.stackSize }));
    els.play.setAttribute('aria-pressed', String(playTimer !== 0));
    setText(els.play, t(playTimer ? 'timeline.pause' : 'timeline.play'));
  }

  function byId(id) {
    return document.getElementById(id);
  }

  /** Read-only view of the viewer's state for the browser tests (and curious users). */
  function exposeTestHook() {
    window.stackcast = Object.freeze({
      get state() { return state; },
      /** Sequence number of the image on screen (0: none yet). */
      get imageSeq() { return shownSeq; },
      get requestedSeq() { return requestedSeq; },
      /** True while an image or version load is under way (more may follow for requests meanwhile). */
      get busy() { return pumping || loading !== null; },
      get imagesShown() { return imagesShown; },
      get stackSize() { return metrics.stackSize; },
      get exposure() { return metrics.exposure; },
      get lastImageAt() { return lastImageAt; },
      /** True while the server has published nothing yet (its waiting image). */
      get waitingForFirst() { return waitingForFirst; },
      get connects() { return connects; },
      get lastConnectedAt() { return lastConnectedAt; },
      get nextRetryAt() { return nextRetryAt; },
      get received() { return Object.assign({}, received); },
      /** The language the page speaks (en, fr, de, es, it). */
      get lang() { return i18n ? i18n.lang : 'en'; },
      get nightMode() { return document.documentElement.classList.contains('night'); },
      get worldItems() { return viewer.world.getItemCount(); },
      /** Version on screen (0: none, or the plain web_image.jpg of a server without versions). */
      get version() { return shownVersion; },
      get latestVersion() { return latestVersion; },
      get loadingVersion() { return loading ? loading.version : 0; },
      get versionsShown() { return versionsShown; },
      /** The version the timeline is scrubbed back to (0: live). */
      get scrubVersion() { return scrubVersion; },
      /** The frames of the night the timeline knows. */
      get historyFrames() { return frames.length; },
      viewer: viewer,
    });
  }
})();
