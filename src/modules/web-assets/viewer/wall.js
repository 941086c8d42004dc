/*
 * stackcast wall (GET /wall): the live scopes in turn, every ?every= seconds (5-600,
 * default 20), each scope's newest image swapped in without a flash: the next image is
 * decoded in the hidden layer, then fades in over the one on screen, which stays opaque
 * underneath until the fade ends. A scope silent for 10 minutes leaves the rotation.
 */
(function () {
  'use strict';

  var i18n = window.stackcastI18n;
  var feed = window.stackcastScopes;
  var t = i18n.t;

  var DEFAULT_EVERY_S = 20;
  var MIN_EVERY_S = 5;
  var MAX_EVERY_S = 600;
  var SILENT_AFTER_MS = 10 * 60 * 1000;
  /** How often scopes that fell silent are looked for between lists. */
  var CHECK_MS = 15000;

  var every = parseEvery(new URLSearchParams(window.location.search).get('every'));
  var layers = [document.getElementById('layer-a'), document.getElementById('layer-b')];
  var els = {
    stage: document.getElementById('stage'),
    waiting: document.getElementById('waiting'),
    title: document.getElementById('caption-title'),
    object: document.getElementById('caption-object'),
    stack: document.getElementById('caption-stack'),
    exposure: document.getElementById('caption-exposure'),
  };
  var reducedMotion = window.matchMedia('(prefers-reduced-motion: reduce)');

  var scopes = [];
  /** The scope on screen: { id, version }; null on the waiting screen. */
  var shown = null;
  /** The image being decoded: a newer request supersedes it. */
  var loading = 0;
  var front = null;
  var rotateTimer = null;
  var swaps = 0;
  var rotations = 0;
  /** A fade in progress: a newer image waits for its end, so the layer under it is never changed on screen. */
  var fading = false;
  var pending = null;
  /** Scopes whose h/<version>.jpg answered 404: their history is off, v/<version>/image.jpg is used. */
  var withoutHistory = new Set();

  function parseEvery(raw) {
    if (raw === null) {
      return DEFAULT_EVERY_S;
    }
    var n = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : NaN;
    if (n >= MIN_EVERY_S && n <= MAX_EVERY_S) {
      return n;
    }
    console.warn('[stackcast] wall: every must be a number of seconds from ' + MIN_EVERY_S + ' to ' + MAX_EVERY_S +
      ', got ' + JSON.stringify(raw) + ': showing each scope for ' + DEFAULT_EVERY_S + ' s');
    return DEFAULT_EVERY_S;
  }

  /** The scopes with an image newer than 10 minutes, in the list's order. */
  function live() {
    var now = Date.now();
    return scopes.filter(function (s) {
      return typeof s.version === 'number' && s.version > 0 && now - feed.updatedAt(s) < SILENT_AFTER_MS;
    });
  }

  function find(id) {
    for (var i = 0; i < scopes.length; i += 1) {
      if (scopes[i].id === id) {
        return scopes[i];
      }
    }
    return null;
  }

  function onList(list) {
    scopes = list;
    var current = shown && find(shown.id);
    var stillLive = current && live().indexOf(current) !== -1;
    if (!stillLive) {
      advance();
      return;
    }
    caption(current);
    if (current.version !== shown.version) {
      show(current);
    }
  }

  /** The next live scope after the one on screen (the same one when it is alone). */
  function advance() {
    clearTimeout(rotateTimer);
    rotateTimer = setTimeout(advance, every * 1000);
    var candidates = live();
    if (candidates.length === 0) {
      wait();
      return;
    }
    var at = -1;
    for (var i = 0; shown && i < candidates.length; i += 1) {
      if (candidates[i].id === shown.id) {
        at = i;
      }
    }
    var next = candidates[(at + 1) % candidates.length];
    if (!shown || next.id !== shown.id || next.version !== shown.version) {
      show(next);
    }
  }

  function wait() {
    loading += 1;
    pending = null;
    shown = null;
    els.stage.hidden = true;
    els.waiting.hidden = false;
  }

  function imageUrl(scope) {
    var base = feed.base(scope.id);
    return withoutHistory.has(scope.id) ? base + 'v/' + scope.version + '/image.jpg' : base + 'h/' + scope.version + '.jpg';
  }

  /** Decodes the scope's newest image in the hidden layer, then swaps it in. */
  function show(scope) {
    if (fading) {
      pending = scope;
      return;
    }
    pending = null;
    var token = (loading += 1);
    var back = layers[0] === front ? layers[1] : layers[0];
    var url = imageUrl(scope);
    back.src = url;
    back.decode().then(function () {
      if (token === loading) {
        swap(back, scope);
      }
    }, function () {
      if (token !== loading) {
        return;
      }
      if (!withoutHistory.has(scope.id)) {
        withoutHistory.add(scope.id);
        show(scope);
      }
      // Else pruned meanwhile: the list brings the newer version.
    });
  }

  function swap(next, scope) {
    var old = front;
    front = next;
    if (old) {
      old.className = 'layer behind';
    }
    next.className = 'layer front';
    var fades = !reducedMotion.matches && old && getComputedStyle(next).animationName !== 'none';
    if (fades) {
      fading = true;
      next.addEventListener('animationend', function done() {
        next.removeEventListener('animationend', done);
        old.className = 'layer';
        fading = false;
        if (pending) {
          show(pending);
        }
      });
    } else if (old) {
      old.className = 'layer';
    }
    if (!shown || shown.id !== scope.id) {
      rotations += 1;
    }
    shown = { id: scope.id, version: scope.version };
    swaps += 1;
    caption(scope);
    els.waiting.hidden = true;
    els.stage.hidden = false;
  }

  function caption(scope) {
    setText(els.title, typeof scope.title === 'string' && scope.title !== '' ? scope.title : scope.id);
    setText(els.stack, typeof scope.stackSize === 'number' ? i18n.number(scope.stackSize) : '–');
    setText(els.exposure, feed.exposure(scope.exposure));
    var object = typeof scope.object === 'string' ? scope.object : '';
    if (els.object.dataset.name !== object) {
      els.object.dataset.name = object;
      setText(els.object, object);
      feed.objectLabel(object).then(function (label) {
        if (els.object.dataset.name === object) {
          setText(els.object, label);
        }
      });
    }
  }

  function setText(el, text) {
    if (el.textContent !== text) {
      el.textContent = text;
    }
  }

  i18n.ready.then(function () {
    document.title = t('wall.title');
    feed.connect(onList, function () { /* no controls, no status: the image stays on screen */ });
    setInterval(function () {
      if (shown && live().every(function (s) { return s.id !== shown.id; })) {
        advance();
      }
    }, CHECK_MS);
  });

  /** Read-only state for tests. */
  window.stackcastWall = Object.freeze({
    get every() { return every; },
    get scope() { return shown ? shown.id : null; },
    get version() { return shown ? shown.version : 0; },
    get swaps() { return swaps; },
    get rotations() { return rotations; },
  });
})();
