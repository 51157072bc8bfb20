/* fieldsvc service worker: keeps the phone form's shell so that it opens with no network.
   Submissions are never handled here: the page's IndexedDB outbox owns them. */
'use strict';
var VERSION = '__VERSION__';
var CACHE = 'fieldsvc-shell-' + VERSION;
var Q = '?v=' + VERSION;
var LANGUAGES = '__LANGUAGES__'.split(' ');
var SHELL = ['/app', '/app/static/app.js' + Q, '/app/static/app.css' + Q, '/app/static/icon.svg' + Q,
  '/manifest.webmanifest', '/api/v1/catalog'].concat(
  LANGUAGES.map(function (lang) { return '/app/i18n/' + lang + '.json'; }));
var NETWORK_TIMEOUT_MS = 4000;

self.addEventListener('install', function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) {
    // Versioned files come from the HTTP cache the page just filled; the rest is fetched afresh.
    return cache.addAll(SHELL.map(function (url) { return new Request(url, { cache: url.indexOf('?v=') > 0 ? 'default' : 'no-cache' }); }));
  }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener('activate', function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k.indexOf('fieldsvc-shell-') === 0 && k !== CACHE; })
      .map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});

function fromNetwork(request, timeout) {
  return new Promise(function (resolve, reject) {
    var timer = setTimeout(function () { reject(new Error('timeout')); }, timeout);
    fetch(request).then(function (r) { clearTimeout(timer); resolve(r); }, function (e) { clearTimeout(timer); reject(e); });
  });
}

// Network first (fresh when online), the cached copy when the network is down or too slow.
function networkFirst(request, cacheKey) {
  return fromNetwork(request, NETWORK_TIMEOUT_MS).then(function (response) {
    if (response.ok && cacheKey) {
      var copy = response.clone();
      caches.open(CACHE).then(function (cache) { cache.put(cacheKey, copy); });
    }
    return response;
  }).catch(function () {
    return caches.open(CACHE).then(function (cache) { return cache.match(cacheKey || request); }).then(function (hit) {
      return hit || Response.error();
    });
  });
}

self.addEventListener('fetch', function (event) {
  var request = event.request;
  if (request.method !== 'GET') return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  var path = url.pathname;
  if (request.mode === 'navigate' && (path === '/app' || path === '/join' || path.indexOf('/join/') === 0)) {
    // Every phone page is the same shell; a join link opened offline still gets it.
    event.respondWith(fromNetwork(request, NETWORK_TIMEOUT_MS).catch(function () {
      return caches.open(CACHE).then(function (cache) { return cache.match('/app'); }).then(function (hit) {
        return hit || Response.error();
      });
    }));
    return;
  }
  if (path.indexOf('/app/static/') === 0) {
    event.respondWith(caches.open(CACHE).then(function (cache) {
      return cache.match(request).then(function (hit) { return hit || networkFirst(request, request); });
    }));
    return;
  }
  if (path.indexOf('/app/i18n/') === 0 || path === '/api/v1/catalog' || path === '/manifest.webmanifest') {
    event.respondWith(networkFirst(request, path));
  }
});
