/*
 * stackcast viewer, languages: picks the visitor's language (?lang=, then the browser's
 * languages, then the server's VIEWER_LANGUAGE from /status, then English), loads its
 * catalogue (i18n-<code>.json) and translates the page. Loaded in <head> before viewer.js,
 * so the catalogue downloads while OpenSeadragon does.
 */
(function () {
  'use strict';

  var LANGUAGES = ['en', 'fr', 'de', 'es', 'it'];
  /** A catalogue that never arrives must not keep the viewer from starting. */
  var LOAD_TIMEOUT_MS = 4000;

  var catalogue = {};
  var lang = 'en';
  var locale = 'en';
  var numbers = null;

  /** The first of `tags` this viewer speaks: { lang, locale } (the tag itself, e.g. de-CH, for numbers). */
  function pick(tags) {
    for (var i = 0; i < tags.length; i += 1) {
      var tag = typeof tags[i] === 'string' ? tags[i].trim() : '';
      var base = tag.toLowerCase().split('-')[0];
      if (LANGUAGES.indexOf(base) !== -1) {
        return { lang: base, locale: supported(tag) ? tag : base };
      }
    }
    return null;
  }

  function supported(tag) {
    try {
      return Intl.NumberFormat.supportedLocalesOf([tag]).length > 0;
    } catch (e) {
      return false;
    }
  }

  function fromQuery() {
    var asked = new URLSearchParams(window.location.search).get('lang');
    return asked ? pick([asked]) : null;
  }

  function fromBrowser() {
    var list = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language];
    return pick(Array.prototype.slice.call(list));
  }

  /** VIEWER_LANGUAGE, asked only when neither the page address nor the browser names a language. */
  function fromServer() {
    // /status answers 503 with the same body while stopped, hence no check of `ok`.
    return fetch('status', { cache: 'no-store' })
      .then(function (response) { return response.json(); })
      .then(function (status) { return status ? pick([status.viewerLanguage]) : null; })
      .catch(function () { return null; });
  }

  function load(code) {
    return fetch('i18n-' + code + '.json').then(function (response) {
      if (!response.ok) {
        throw new Error('i18n-' + code + '.json: HTTP ' + response.status);
      }
      return response.json();
    });
  }

  function choose() {
    var chosen = fromQuery() || fromBrowser();
    return chosen ? Promise.resolve(chosen) : fromServer();
  }

  var ready = choose()
    .then(function (chosen) {
      chosen = chosen || { lang: 'en', locale: 'en' };
      return load(chosen.lang).then(function (entries) {
        lang = chosen.lang;
        locale = chosen.locale;
        catalogue = entries;
      }, function (err) {
        console.warn('[stackcast] language:', err && err.message ? err.message : err);
        return chosen.lang === 'en' ? undefined : load('en').then(function (entries) { catalogue = entries; });
      });
    })
    .catch(function () { /* no catalogue at all: keys are shown as they are */ });
  ready = Promise.race([ready, new Promise(function (resolve) { setTimeout(resolve, LOAD_TIMEOUT_MS); })]).then(function () {
    document.documentElement.lang = lang;
    if (document.readyState === 'loading') {
      document.addEventListener('DOMContentLoaded', function () { translate(document); });
    } else {
      translate(document);
    }
  });

  /** A number in the visitor's locale (1 234 in French, 1.234 in German). */
  function number(n) {
    if (!numbers || numbers.locale !== locale) {
      numbers = { locale: locale, format: new Intl.NumberFormat(locale) };
    }
    return numbers.format.format(n);
  }

  /** The text of `key`, with each {name} replaced by vars[name] (numbers in the visitor's locale). */
  function t(key, vars) {
    var text = Object.prototype.hasOwnProperty.call(catalogue, key) ? catalogue[key] : key;
    return !vars ? text : text.replace(/\{(\w+)\}/g, function (whole, name) {
      var value = vars[name];
      return value === undefined ? whole : typeof value === 'number' ? number(value) : String(value);
    });
  }

  var ATTRIBUTES = ['title', 'aria-label', 'alt'];

  /** Translates `data-i18n` (text) and `data-i18n-<attribute>` under `root`, and the page title. */
  function translate(root) {
    document.title = t('page.title');
    var texts = root.querySelectorAll('[data-i18n]');
    for (var i = 0; i < texts.length; i += 1) {
      texts[i].textContent = t(texts[i].getAttribute('data-i18n'));
    }
    ATTRIBUTES.forEach(function (attribute) {
      var nodes = root.querySelectorAll('[data-i18n-' + attribute + ']');
      for (var j = 0; j < nodes.length; j += 1) {
        nodes[j].setAttribute(attribute, t(nodes[j].getAttribute('data-i18n-' + attribute)));
      }
    });
  }

  window.stackcastI18n = Object.freeze({
    /** Resolves once the language is chosen and its catalogue loaded (or given up on). */
    ready: ready,
    t: t,
    number: number,
    translate: translate,
    get lang() { return lang; },
    get locale() { return locale; },
  });
})();
