/* fieldsvc phone form: enroll, tally, keep every tally in an IndexedDB outbox, send it exactly once.
   No framework; same-origin only; strings come from /app/i18n/<lang>.json (Flask-Babel catalogs). */
'use strict';
(function () {
  // The languages the server offers (config LANGUAGES), as the shell's language menu lists them.
  var LANGS = Array.prototype.map.call(document.querySelectorAll('#lang option'),
    function (option) { return option.value; });
  var SEX_ORDER = ['F', 'M'];
  var MAX_DAY_CONSULTATIONS = 150;
  var RETRY_EVERY_MS = 5000;
  var $ = function (id) { return document.getElementById(id); };
  var REVIEWS_EVERY_MS = 60000;
  var state = { lang: 'fr', t: {}, plural: [], catalog: null, tally: null, view: 'join' };

  /* ---------- storage: localStorage for the session, IndexedDB for the outbox ---------- */
  function load(key, fallback) {
    try { var v = localStorage.getItem('fieldsvc.' + key); return v ? JSON.parse(v) : fallback; } catch (e) { return fallback; }
  }
  function save(key, value) { localStorage.setItem('fieldsvc.' + key, JSON.stringify(value)); }

  var dbPromise = null;
  function openDb() {
    if (!dbPromise) {
      dbPromise = new Promise(function (resolve, reject) {
        var req = indexedDB.open('fieldsvc', 1);
        req.onupgradeneeded = function () { req.result.createObjectStore('outbox', { keyPath: 'id' }); };
        req.onsuccess = function () { resolve(req.result); };
        req.onerror = function () { reject(req.error); };
      });
    }
    return dbPromise;
  }
  function tx(mode, work) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var t = db.transaction('outbox', mode);
        var result = work(t.objectStore('outbox'));
        t.oncomplete = function () { resolve(result && 'result' in result ? result.result : undefined); };
        t.onerror = function () { reject(t.error); };
        t.onabort = function () { reject(t.error); };
      });
    });
  }
  function outboxPut(item) { item.updated = Date.now(); return tx('readwrite', function (s) { return s.put(item); }); }
  function outboxGet(id) { return tx('readonly', function (s) { return s.get(id); }); }
  function outboxAll() {
    return tx('readonly', function (s) { return s.getAll(); }).then(function (items) {
      return (items || []).sort(function (a, b) { return b.created - a.created; });
    });
  }

  /* ---------- strings ---------- */
  function fillIn(s, values) {
    if (values) { Object.keys(values).forEach(function (k) { s = s.split('{' + k + '}').join(values[k]); }); }
    return s;
  }
  function t(key, values) { return fillIn(typeof state.t[key] === 'string' ? state.t[key] : key, values); }
  // A string with a number {n}: the plural form the server's catalog gives that number (ngettext).
  function tn(key, n, values) {
    var forms = state.t[key];
    if (!Array.isArray(forms) || !forms.length) return key;
    var index = state.plural[n < 200 ? n : 100 + n % 100] || 0;
    return fillIn(forms[Math.min(index, forms.length - 1)], Object.assign({ n: n }, values || {}));
  }
  // Left-to-right isolation (LRI ... PDI): a date or an ICD chapter reads the same in Arabic.
  function ltr(text) { return '\u2066' + text + '\u2069'; }
  function label(entry) { return entry ? (entry['label_' + state.lang] || entry.label_fr || entry.code) : ''; }
  function linkLang() {
    var wanted = new URLSearchParams(location.search).get('lang');
    return LANGS.indexOf(wanted) >= 0 ? wanted : null;
  }
  function chooseLang() {
    // A join link's ?lang= wins and becomes the doctor's choice (until they pick another).
    var fromLink = linkLang();
    if (fromLink) {
      save('lang', fromLink);
      var params = new URLSearchParams(location.search);
      params.delete('lang');
      history.replaceState(null, '', location.pathname + (params.toString() ? '?' + params : '') + location.hash);
      return fromLink;
    }
    var saved = load('lang', null);
    if (LANGS.indexOf(saved) >= 0) return saved;
    var prefs = navigator.languages || [navigator.language || 'fr'];
    for (var i = 0; i < prefs.length; i++) {
      var code = String(prefs[i]).toLowerCase().slice(0, 2);
      if (LANGS.indexOf(code) >= 0) return code;
    }
    return 'fr';
  }
  function setLang(lang) {
    return fetch('/app/i18n/' + lang + '.json').then(function (r) {
      if (!r.ok) throw new Error(r.status);
      return r.json();
    }).then(function (data) {
      state.lang = lang;
      state.t = data.strings;
      state.plural = data.plural || [];
      document.documentElement.lang = lang;
      document.documentElement.dir = data.dir;
      $('lang').value = lang;
      document.querySelectorAll('[data-i18n]').forEach(function (el) { el.textContent = t(el.dataset.i18n); });
      document.title = t('app.title');
      render();
    });
  }

  /* ---------- helpers ---------- */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') node.textContent = attrs[k];
      else if (k === 'className') node.className = attrs[k];
      else if (attrs[k] !== null && attrs[k] !== undefined) node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return node;
  }
  function option(value, text, selected) {
    var o = el('option', { value: value, text: text });
    if (selected) o.selected = true;
    return o;
  }
  function fill(select, options) {
    select.textContent = '';
    options.forEach(function (o) { select.appendChild(o); });
  }
  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }
  function apiHeaders(token) {
    // The server's messages (problem+json detail) come back in the language the doctor chose.
    var h = { 'Content-Type': 'application/json', Accept: 'application/json', 'Accept-Language': state.lang };
    if (token) h.Authorization = 'Bearer ' + token;
    return h;
  }
  function message(text, kind) {
    var m = $('message');
    m.textContent = text || '';
    m.className = 'message' + (kind ? ' ' + kind : '');
    m.hidden = !text;
  }
  function show(view) {
    state.view = view;
    if (view === 'outbox') fetchReviews();
    if (view === 'me') fetchMe();
    ['join', 'setup', 'grid', 'review', 'outbox', 'me'].forEach(function (v) { $('view-' + v).hidden = v !== view; });
    $('nav-tally').setAttribute('aria-current', view === 'outbox' || view === 'me' ? 'false' : 'page');
    $('nav-outbox').setAttribute('aria-current', view === 'outbox' ? 'page' : 'false');
    $('nav-me').setAttribute('aria-current', view === 'me' ? 'page' : 'false');
    render();
    var h = $('view-' + view).querySelector('h2');
    if (h) { h.tabIndex = -1; h.focus({ preventScroll: false }); }
  }
  function session() { return load('session', null); }
  function tokens() { return load('tokens', {}); }
  function specialty(code) {
    return (state.catalog ? state.catalog.specialties : []).filter(function (s) { return s.code === code; })[0];
  }
  function measureList() { return state.catalog ? state.catalog.measures : []; }
  function sexes() {
    var list = state.catalog ? state.catalog.sexes.slice() : [];
    return list.sort(function (a, b) { return SEX_ORDER.indexOf(a.code) - SEX_ORDER.indexOf(b.code); });
  }

  /* ---------- catalog ---------- */
  function loadCatalog() {
    return fetch('/api/v1/catalog', { headers: { Accept: 'application/json' } }).then(function (r) {
      if (!r.ok) throw new Error(r.status);
      return r.json();
    }).then(function (c) { save('catalog', c); return c; }).catch(function () { return load('catalog', null); })
      .then(function (c) {
        state.catalog = c;
        // Consultations first: the measure every tally has.
        if (c) c.measures.sort(function (a, b) { return (a.code !== 'consultations') - (b.code !== 'consultations'); });
      });
  }

  /* ---------- join ---------- */
  function renderJoin() {
    var current = $('join-specialty').value || (session() && session().specialty) || '';
    fill($('join-specialty'), [option('', '—', !current)].concat((state.catalog ? state.catalog.specialties : []).map(function (s) {
      return option(s.code, label(s), s.code === current);
    })));
  }
  function onJoin(event) {
    event.preventDefault();
    enroll(true);
  }
  function enroll(withProfileKey) {
    var body = {
      join_code: $('join-code').value.trim().toUpperCase(),
      display_name: $('join-name').value.trim(),
      specialty: $('join-specialty').value
    };
    var profileKey = load('profile_key', null);
    if (profileKey && withProfileKey) body.profile_key = profileKey; else body.create_profile = true;
    if (!navigator.onLine) { message(t('join.offline'), 'error'); return; }
    fetch('/api/v1/enrollments', {
      method: 'POST', headers: apiHeaders(), body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) { return { status: r.status, data: data }; });
    }).then(function (res) {
      if (res.status !== 200 && res.status !== 201) {
        if (body.profile_key && res.data.errors && res.data.errors.profile_key) {
          save('profile_key', null);  // a key the server no longer knows: join with a new profile
          enroll(false);
          return;
        }
        message(t('join.failed', { detail: res.data.detail || res.status }), 'error');
        return;
      }
      var all = tokens();
      all[res.data.caravan.id] = res.data.token;
      save('tokens', all);
      if (res.data.profile_key) save('profile_key', res.data.profile_key);
      save('session', { caravan: res.data.caravan, join_code: body.join_code, display_name: body.display_name, specialty: body.specialty });
      message(t('join.joined', { title: res.data.caravan.title }), 'ok');
      show('setup');
      sync(true);
    }).catch(function () { message(t('join.offline'), 'error'); });
  }

  /* ---------- setup: day, site, specialty ---------- */
  function caravanDays(caravan) {
    var days = [];
    var d = new Date(caravan.first_day + 'T00:00:00Z');
    var last = new Date(caravan.last_day + 'T00:00:00Z');
    while (d <= last && days.length < 62) { days.push(d.toISOString().slice(0, 10)); d.setUTCDate(d.getUTCDate() + 1); }
    return days;
  }
  function renderSetup() {
    var s = session();
    if (!s) return;
    var c = s.caravan;
    $('caravan-title').textContent = c.title;
    var today = new Date().toISOString().slice(0, 10);
    var days = caravanDays(c);
    var day = $('setup-day').value || (days.indexOf(today) >= 0 ? today : days[0]);
    fill($('setup-day'), days.map(function (d) { return option(d, formatDay(d), d === day); }));
    var site = $('setup-site').value;
    fill($('setup-site'), [option('', t('setup.no_site'), !site)].concat((c.sites || []).map(function (x) {
      return option(String(x.id), x.name, String(x.id) === site || (!site && c.sites.length === 1));
    })));
    var spec = $('setup-specialty').value || s.specialty;
    var codes = (c.specialties && c.specialties.length ? c.specialties.slice() : []);
    if (s.specialty && codes.indexOf(s.specialty) < 0) codes.push(s.specialty);
    if (!codes.length && state.catalog) codes = state.catalog.specialties.map(function (x) { return x.code; });
    fill($('setup-specialty'), codes.map(function (code) {
      return option(code, label(specialty(code)) || code, code === spec);
    }));
    $('draft').hidden = !hasDraft();
    if (hasDraft()) {
      $('draft-text').textContent = t('draft.text', {
        day: formatDay(state.tally.day), specialty: label(specialty(state.tally.specialty)) || state.tally.specialty
      });
    }
  }
  // A tally with something typed in and not yet in the outbox (or an amendment in progress).
  function hasDraft() {
    var d = state.tally;
    return !!(d && d.counts && (Object.keys(d.counts).length || (d.chapters || []).length || d.method === 'PUT'));
  }
  function onResumeDraft() { message(''); show('grid'); }
  function onDiscardDraft() {
    state.tally = null;
    saveDraft();
    message('');
    render();
    $('setup-form').querySelector('button[type=submit]').focus();
  }
  // Every screen shows a day the same way: its ISO date (isolated left-to-right), then its weekday.
  function formatDay(day) {
    try {
      return ltr(day) + ' (' + new Date(day + 'T12:00:00Z').toLocaleDateString(state.lang + '-MA', { weekday: 'short', timeZone: 'UTC' }) + ')';
    } catch (e) { return ltr(day); }
  }
  function onSetup(event) {
    event.preventDefault();
    if (hasDraft()) {  // never replace an unfinished tally without asking
      message(t('draft.first'), 'error');
      $('draft').hidden = false;
      $('draft-resume').focus();
      return;
    }
    var s = session();
    state.tally = {
      id: uuid(), method: 'POST', caravan_id: s.caravan.id, day: $('setup-day').value,
      site_id: $('setup-site').value ? Number($('setup-site').value) : null,
      specialty: $('setup-specialty').value, counts: {}, chapters: []
    };
    saveDraft();
    show('grid');
  }

  /* ---------- the grid ---------- */
  function key(measure, sex, age, chapter) { return [measure, sex, age, chapter || ''].join('|'); }
  function count(k) { return state.tally.counts[k] || 0; }
  function total(filter) {
    var sum = 0;
    Object.keys(state.tally.counts).forEach(function (k) { if (filter(k.split('|'))) sum += state.tally.counts[k]; });
    return sum;
  }
  function block(measure, chapter) {
    var m = measureList().filter(function (x) { return x.code === measure; })[0] || { code: measure };
    var ch = chapter ? state.catalog.conditions.filter(function (x) { return x.code === chapter; })[0] : null;
    var table = el('table', { className: 'tally', 'data-measure': measure, 'data-chapter': chapter || '' });
    var caption = chapter ? (label(m) + ' · ' + ltr(chapter) + ' ' + label(ch)) : label(m);
    table.appendChild(el('caption', { text: caption }));
    var head = el('tr', {}, [el('th', { scope: 'col', text: t('grid.age') })]);
    sexes().forEach(function (s) { head.appendChild(el('th', { scope: 'col', text: label(s) })); });
    head.appendChild(el('th', { scope: 'col', text: t('grid.total') }));
    table.appendChild(el('thead', {}, [head]));
    var body = el('tbody');
    state.catalog.age_bands.forEach(function (age) {
      var row = el('tr', {}, [el('th', { scope: 'row' }, [el('bdi', { dir: 'ltr', text: age })])]);
      sexes().forEach(function (s) {
        var k = key(measure, s.code, age, chapter);
        var id = 'c-' + k.replace(/[^A-Za-z0-9]/g, '_');
        var name = t('grid.cell', { measure: caption, sex: label(s), age: age });
        var input = el('input', {
          id: id, type: 'text', inputmode: 'numeric', pattern: '[0-9]*', maxlength: '5', autocomplete: 'off',
          'data-key': k, value: count(k) ? String(count(k)) : '', placeholder: '0'
        });
        row.appendChild(el('td', {}, [el('div', { className: 'cell' }, [
          el('button', { type: 'button', className: 'step', 'data-step': '-1', 'data-key': k, 'aria-label': t('grid.minus') + ': ' + name, text: '−' }),
          el('label', { className: 'vh', for: id, text: name }),
          input,
          el('button', { type: 'button', className: 'step', 'data-step': '1', 'data-key': k, 'aria-label': t('grid.plus') + ': ' + name, text: '+' })
        ])]));
      });
      row.appendChild(el('td', { className: 'sum', 'data-sum': ['row', measure, age, chapter || ''].join('|') }));
      body.appendChild(row);
    });
    table.appendChild(body);
    var foot = el('tr', {}, [el('th', { scope: 'row', text: t('grid.total') })]);
    sexes().forEach(function (s) { foot.appendChild(el('td', { className: 'sum', 'data-sum': ['col', measure, s.code, chapter || ''].join('|') })); });
    foot.appendChild(el('td', { className: 'sum grand', 'data-sum': ['all', measure, '', chapter || ''].join('|') }));
    table.appendChild(el('tfoot', {}, [foot]));
    return table;
  }
  function renderGrid() {
    var tally = state.tally;
    if (!tally || !state.catalog) return;
    $('grid-context').textContent = [formatDay(tally.day), label(specialty(tally.specialty)) || tally.specialty].join(' · ');
    var grid = $('grid');
    grid.textContent = '';
    measureList().forEach(function (m, i) {
      var details = el('details', { className: 'block', 'data-measure': m.code });
      if (i === 0 || total(function (p) { return p[0] === m.code; }) > 0) details.open = true;
      details.appendChild(el('summary', {}, [label(m) + ' ', el('span', { className: 'badge', 'data-sum': ['measure', m.code, '', ''].join('|') })]));
      var chapters = tally.chapters.filter(function (c) { return c[0] === m.code; });
      if (chapters.length) details.appendChild(el('p', { className: 'muted', text: t('grid.unattributed') }));
      details.appendChild(block(m.code, null));
      chapters.forEach(function (c) {
        details.appendChild(block(m.code, c[1]));
        details.appendChild(el('button', { type: 'button', className: 'link', 'data-remove-chapter': c.join('|'), text: t('grid.remove_chapter') + ' (' + ltr(c[1]) + ')' }));
      });
      grid.appendChild(details);
    });
    fill($('chapter-measure'), measureList().map(function (m) { return option(m.code, label(m), m.code === 'consultations'); }));
    fill($('chapter-code'), state.catalog.conditions.map(function (c) { return option(c.code, ltr(c.code) + ' · ' + label(c)); }));
    updateSums();
  }
  function updateSums() {
    document.querySelectorAll('#grid [data-sum]').forEach(function (cell) {
      var p = cell.dataset.sum.split('|');
      var kind = p[0], measure = p[1], what = p[2], chapter = p[3];
      var sum = total(function (k) {
        if (k[0] !== measure) return false;
        if (kind === 'measure') return true;
        if (k[3] !== chapter) return false;
        if (kind === 'row') return k[2] === what;
        if (kind === 'col') return k[1] === what;
        return true;
      });
      cell.textContent = String(sum);
    });
  }
  function saveDraft() { save('draft', state.tally); }
  function setCount(k, value) {
    var n = Math.max(0, Math.min(10000, Math.floor(Number(value) || 0)));
    if (n) state.tally.counts[k] = n; else delete state.tally.counts[k];
    var input = document.querySelector('#grid input[data-key="' + k + '"]');
    if (input && input.value !== (n ? String(n) : '')) input.value = n ? String(n) : '';
    updateSums();
    saveDraft();
  }
  function onGridClick(event) {
    var b = event.target.closest('button');
    if (!b) return;
    if (b.dataset.step) { setCount(b.dataset.key, count(b.dataset.key) + Number(b.dataset.step)); return; }
    if (b.dataset.removeChapter) {
      var c = b.dataset.removeChapter.split('|');
      state.tally.chapters = state.tally.chapters.filter(function (x) { return x.join('|') !== c.join('|'); });
      Object.keys(state.tally.counts).forEach(function (k) {
        var p = k.split('|');
        if (p[0] === c[0] && p[3] === c[1]) delete state.tally.counts[k];
      });
      saveDraft();
      renderGrid();
    }
  }
  function onGridInput(event) {
    var input = event.target;
    if (!input.dataset || !input.dataset.key) return;
    var digits = input.value.replace(/[^0-9\u0660-\u0669]/g, '').replace(/[\u0660-\u0669]/g, function (d) { return String(d.charCodeAt(0) - 0x660); });
    if (digits !== input.value) input.value = digits;
    var n = Math.min(10000, Number(digits) || 0);
    if (n) state.tally.counts[input.dataset.key] = n; else delete state.tally.counts[input.dataset.key];
    updateSums();
    saveDraft();
  }
  function onAddChapter() {
    var c = [$('chapter-measure').value, $('chapter-code').value];
    if (!state.tally.chapters.some(function (x) { return x.join('|') === c.join('|'); })) state.tally.chapters.push(c);
    saveDraft();
    renderGrid();
    $('breakdown').open = false;
  }

  /* ---------- review, plausibility, send ---------- */
  function bodyOf(tally) {
    var lines = Object.keys(tally.counts).sort().map(function (k) {
      var p = k.split('|');
      var line = { measure: p[0], sex: p[1], age_band: p[2], count: tally.counts[k] };
      if (p[3]) line.condition = p[3];
      return line;
    });
    var body = { id: tally.id, caravan_id: tally.caravan_id, day: tally.day, specialty: tally.specialty, lines: lines };
    if (tally.site_id) body.site_id = tally.site_id;
    return body;
  }
  function measureTotal(body, measure) {
    return body.lines.reduce(function (s, l) { return s + (l.measure === measure ? l.count : 0); }, 0);
  }
  function warnings(body, others) {
    var w = [];
    var consultations = measureTotal(body, 'consultations');
    var day = consultations + others.filter(function (o) {
      return o.id !== body.id && o.body.day === body.day && o.body.caravan_id === body.caravan_id;
    }).reduce(function (s, o) { return s + measureTotal(o.body, 'consultations'); }, 0);
    if (day > MAX_DAY_CONSULTATIONS) w.push(tn('warn.many', day));
    if (measureTotal(body, 'procedures') > consultations) w.push(t('warn.procedures'));
    if (measureTotal(body, 'referrals') > consultations) w.push(t('warn.referrals'));
    if (body.specialty !== 'OPH' && measureTotal(body, 'glasses') > 0) w.push(t('warn.glasses'));
    return w;
  }
  function renderReview() {
    var tally = state.tally;
    if (!tally || !state.catalog) return;
    var body = bodyOf(tally);
    $('review-context').textContent = [formatDay(tally.day), label(specialty(tally.specialty)) || tally.specialty].join(' · ');
    $('review-send').textContent = t(tally.method === 'PUT' ? 'review.amend' : 'review.send');
    var table = $('review-table');
    table.textContent = '';
    var head = el('tr', {}, [el('th', { scope: 'col', text: t('grid.measure') })]);
    sexes().forEach(function (s) { head.appendChild(el('th', { scope: 'col', text: label(s) })); });
    head.appendChild(el('th', { scope: 'col', text: t('grid.total') }));
    table.appendChild(el('thead', {}, [head]));
    var tbody = el('tbody');
    measureList().forEach(function (m) {
      var all = measureTotal(body, m.code);
      if (!all) return;
      var row = el('tr', {}, [el('th', { scope: 'row', text: label(m) })]);
      sexes().forEach(function (s) {
        row.appendChild(el('td', { text: String(body.lines.reduce(function (n, l) { return n + (l.measure === m.code && l.sex === s.code ? l.count : 0); }, 0)) }));
      });
      row.appendChild(el('td', { className: 'sum', text: String(all) }));
      tbody.appendChild(row);
    });
    table.appendChild(tbody);
    outboxAll().then(function (items) {
      var w = body.lines.length ? warnings(body, items) : [t('review.empty')];
      var box = $('warnings');
      box.textContent = '';
      box.hidden = !w.length;
      if (w.length) {
        box.appendChild(el('strong', { text: t('warn.title') }));
        box.appendChild(el('ul', {}, w.map(function (x) { return el('li', { text: x }); })));
      }
      $('review-send').disabled = !body.lines.length;
    });
  }
  function onSend() {
    var tally = state.tally;
    var body = bodyOf(tally);
    if (!body.lines.length) return;
    $('review-send').disabled = true;
    // Written to the outbox BEFORE any network call: a crash or a dead network loses nothing.
    outboxGet(tally.id).then(function (existing) {
      var item = existing || { id: tally.id, created: Date.now() };
      item.caravan_id = tally.caravan_id;
      item.body = body;
      item.method = tally.method;
      item.status = 'pending';
      item.detail = '';
      item.attempts = 0;
      item.next_at = 0;
      item.draft = { counts: tally.counts, chapters: tally.chapters, site_id: tally.site_id };
      return outboxPut(item);
    }).then(function () {
      state.tally = null;
      saveDraft();
      message(t('review.saved'), 'ok');
      show('outbox');
      return sync(true).then(function () { return outboxGet(tally.id); }).then(function (item) {
        // The banner says what happened: sent now, or kept for later (as it said before).
        if (item && item.status === 'sent' && $('message').textContent === t('review.saved')) message(t('review.sent'), 'ok');
      });
    }).catch(function (e) { message(String(e), 'error'); $('review-send').disabled = false; });
  }

  /* ---------- the outbox and its sync ---------- */
  var syncing = null;
  var backoff = function (attempts) { return Math.min(300000, 2000 * Math.pow(2, Math.min(attempts, 8))) * (0.75 + Math.random() / 2); };
  function sync(force) {
    if (syncing) return syncing.then(function () { return force ? runSync(true) : null; });
    return runSync(force);
  }
  function runSync(force) {
    syncing = outboxAll().then(function (items) {
      var queue = items.filter(function (i) { return i.status === 'pending' && (force || !i.next_at || i.next_at <= Date.now()); });
      var chain = Promise.resolve();
      queue.reverse().forEach(function (item) { chain = chain.then(function () { return sendOne(item); }); });
      return chain;
    }).catch(function () { /* retried by the timer */ }).then(function () { syncing = null; renderOutbox(); });
    return syncing;
  }
  function sendOne(item) {
    var token = tokens()[item.caravan_id];
    if (!token) { askToJoin(item.caravan_id); return Promise.resolve(); }
    var url = '/api/v1/submissions' + (item.method === 'PUT' ? '/' + encodeURIComponent(item.id) : '');
    return fetch(url, {
      method: item.method, cache: 'no-store',
      headers: apiHeaders(token),
      body: JSON.stringify(item.body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) { return { status: r.status, data: data }; });
    }, function () { return { status: 0, data: {} }; }).then(function (res) {
      if (res.status === 200 || res.status === 201) {
        item.status = 'sent';
        item.detail = '';
        item.sent_at = Date.now();
        item.review = { status: (res.data && res.data.review_status) || 'received', reason: (res.data && res.data.review_reason) || '' };
      } else if (res.status === 401) {
        var all = tokens();
        delete all[item.caravan_id];
        save('tokens', all);
        askToJoin(item.caravan_id);
        return null;
      } else if (res.status === 409 && item.method === 'POST') {
        // Our own id already holds an earlier version (a response we never heard): amend it.
        item.method = 'PUT';
        return outboxPut(item).then(function () { return sendOne(item); });
      } else if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
        item.status = 'attention';
        item.detail = res.data.detail || res.data.title || String(res.status);
        item.errors = res.data.errors || null;
      } else {
        item.attempts = (item.attempts || 0) + 1;
        item.next_at = Date.now() + backoff(item.attempts);
      }
      return outboxPut(item);
    });
  }
  /* ---------- the coordinator's review of sent tallies (kept on the phone for offline) ---------- */
  function fetchReviews() {
    if (!navigator.onLine) return Promise.resolve();
    var all = tokens();
    return outboxAll().then(function (items) {
      var caravans = {};
      items.forEach(function (i) { if (i.status === 'sent' && all[i.caravan_id]) caravans[i.caravan_id] = true; });
      return Promise.all(Object.keys(caravans).map(function (id) {
        return fetch('/api/v1/submissions?caravan_id=' + encodeURIComponent(id) + '&limit=500', { headers: apiHeaders(all[id]), cache: 'no-store' })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (page) { if (page && page.items) return keepReviews(page.items); })
          .catch(function () { /* offline or refused: keep the last known review */ });
      }));
    }).then(renderOutbox);
  }
  function keepReviews(submissions) {
    return tx('readwrite', function (store) {
      submissions.forEach(function (sub) {
        var req = store.get(sub.id);
        req.onsuccess = function () {
          var item = req.result;
          // Only a sent tally takes the server's review: one being corrected keeps its own state.
          if (!item || item.status !== 'sent') return;
          var review = { status: sub.review_status, reason: sub.review_reason || '' };
          if (item.review && item.review.status === review.status && item.review.reason === review.reason) return;
          item.review = review;
          store.put(item);
        };
      });
    });
  }
  /* ---------- the volunteer's own record (their profile, through this device's token) ---------- */
  function meToken() {
    var s = session(), all = tokens();
    if (s && s.caravan && all[s.caravan.id]) return all[s.caravan.id];
    var ids = Object.keys(all);
    return ids.length ? all[ids[ids.length - 1]] : null;
  }
  function fill3(text, values) {
    return text.replace(/\{(\w+)\}/g, function (m, k) { return values[k] !== undefined ? values[k] : m; });
  }
  function fetchMe() {
    var token = meToken();
    if (!token) { renderMe(null); return Promise.resolve(); }
    return fetch('/api/v1/volunteers/me/record', { headers: apiHeaders(token), cache: 'no-store' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(renderMe)
      .catch(function () { /* offline: keep what is shown */ });
  }
  function renderMe(record) {
    $('me-none').hidden = !!record;
    $('me-record').hidden = !record;
    if (!record) return;
    $('me-name').textContent = record.display_name;
    $('me-summary').textContent = fill3(t('me.summary'), record);
    var list = $('me-caravans');
    list.textContent = '';
    record.caravans.forEach(function (c) { list.appendChild(el('li', { text: fill3(t('me.caravan'), c) })); });
    var certs = $('me-certificates');
    certs.textContent = '';
    record.certificates.forEach(function (c) {
      certs.appendChild(el('li', {}, [el('a', { href: c.verify_url, text: fill3(t('me.certificate'), c) })]));
    });
    $('me-consent').checked = !!record.public_consent;
  }
  function onConsent() {
    var token = meToken();
    if (!token) return;
    fetch('/api/v1/volunteers/me', { method: 'PATCH', headers: apiHeaders(token), body: JSON.stringify({ public_consent: $('me-consent').checked }) })
      .then(function (r) { return r.json().then(function (data) { return { ok: r.ok, data: data }; }); })
      .then(function (res) {
        if (res.ok) { message(t('me.saved'), 'ok'); renderMe(null); fetchMe(); } else message(res.data.detail || res.data.title, 'error');
      })
      .catch(function () { message(t('me.offline'), 'error'); });
  }
  function onErase() {
    var token = meToken();
    if (!token || !window.confirm(t('me.erase_confirm'))) return;
    fetch('/api/v1/volunteers/me/erase', { method: 'POST', headers: apiHeaders(token) })
      .then(function (r) {
        if (r.status === 204) { save('profile_key', null); message(t('me.erased'), 'ok'); renderMe(null); return; }
        return r.json().then(function (data) { message(data.detail || data.title, 'error'); });
      })
      .catch(function () { message(t('me.offline'), 'error'); });
  }
  function askToJoin(caravanId) {
    var s = session();
    if (s && s.caravan && s.caravan.id === caravanId) {
      if (!$('join-code').value && s.join_code) $('join-code').value = s.join_code;
      message(t('join.again'), 'error');
      if (state.view !== 'join') show('join');
    }
  }
  function statusLabel(status) { return t('status.' + status); }
  function renderOutbox() {
    return outboxAll().then(function (items) {
      var list = $('outbox-list');
      list.textContent = '';
      $('outbox-empty').hidden = items.length > 0;
      var pending = items.filter(function (i) { return i.status !== 'sent'; }).length;
      $('pending-count').textContent = pending ? String(pending) : '';
      items.forEach(function (item) {
        var review = item.status === 'sent' && item.review ? item.review.status : '';
        var correct = review === 'flagged' || review === 'rejected';
        var shown = review && review !== 'received' ? t('review_status.' + review) : statusLabel(item.status);
        var li = el('li', { className: 'item ' + item.status + (correct ? ' attention' : ''), 'data-id': item.id, 'data-status': item.status, 'data-review': review || null }, [
          el('span', { className: 'status', text: shown }),
          el('span', { text: tn('outbox.summary', measureTotal(item.body, 'consultations'), { day: formatDay(item.body.day), specialty: label(specialty(item.body.specialty)) || item.body.specialty }) })
        ]);
        if (item.status === 'attention' && item.detail) li.appendChild(el('p', { className: 'detail', text: item.detail }));
        if (review && item.review.reason) li.appendChild(el('p', { className: 'detail reason', text: t('outbox.reason', { reason: item.review.reason }) }));
        if (item.status !== 'pending') {
          li.appendChild(el('button', { type: 'button', 'data-edit': item.id, className: correct ? 'primary' : null,
            text: t(correct ? 'outbox.correct' : item.status === 'sent' ? 'outbox.amend' : 'outbox.edit') }));
        }
        list.appendChild(li);
      });
    });
  }
  function onOutboxClick(event) {
    var b = event.target.closest('button[data-edit]');
    if (!b) return;
    outboxGet(b.dataset.edit).then(function (item) {
      state.tally = {
        id: item.id, method: item.status === 'sent' || item.method === 'PUT' ? 'PUT' : 'POST', caravan_id: item.caravan_id,
        day: item.body.day, site_id: item.body.site_id || null, specialty: item.body.specialty,
        counts: Object.assign({}, item.draft.counts), chapters: item.draft.chapters.slice()
      };
      saveDraft();
      show('grid');
    });
  }

  /* ---------- wiring ---------- */
  function render() {
    if (state.view === 'join') renderJoin();
    if (state.view === 'setup') renderSetup();
    if (state.view === 'grid') renderGrid();
    if (state.view === 'review') renderReview();
    renderOutbox();
    var online = navigator.onLine;
    $('net').textContent = t(online ? 'net.online' : 'net.offline');
    $('net').className = 'net ' + (online ? 'on' : 'off');
  }
  function start() {
    var code = document.body.dataset.joinCode || decodeURIComponent((location.pathname.match(/^\/join\/([^/]+)/) || ['', ''])[1]).toUpperCase();
    if (code && !$('join-code').value) $('join-code').value = code;
    $('join-form').addEventListener('submit', onJoin);
    $('setup-form').addEventListener('submit', onSetup);
    $('rejoin').addEventListener('click', function () { show('join'); });
    $('grid').addEventListener('click', onGridClick);
    $('grid').addEventListener('input', onGridInput);
    $('chapter-add').addEventListener('click', onAddChapter);
    $('grid-form').addEventListener('submit', function (e) { e.preventDefault(); show('review'); });
    $('review-back').addEventListener('click', function () { show('grid'); });
    $('review-send').addEventListener('click', onSend);
    $('sync-now').addEventListener('click', function () { sync(true); });
    $('outbox-list').addEventListener('click', onOutboxClick);
    $('nav-tally').addEventListener('click', function () { show(session() && tokens()[session().caravan.id] ? (state.tally ? 'grid' : 'setup') : 'join'); });
    $('nav-outbox').addEventListener('click', function () { show('outbox'); });
    $('nav-me').addEventListener('click', function () { show('me'); });
    $('me-consent').addEventListener('change', onConsent);
    $('me-erase').addEventListener('click', onErase);
    $('draft-resume').addEventListener('click', onResumeDraft);
    $('draft-discard').addEventListener('click', onDiscardDraft);
    $('lang').addEventListener('change', function () { save('lang', $('lang').value); setLang($('lang').value); });
    window.addEventListener('online', function () { render(); sync(true); });
    window.addEventListener('offline', render);
    setInterval(function () { sync(false); }, RETRY_EVERY_MS);
    setInterval(function () { if (state.view === 'outbox') fetchReviews(); }, REVIEWS_EVERY_MS);
    // Offline reloads need the service worker, which browsers only run on a secure origin (HTTPS).
    if ('serviceWorker' in navigator && window.isSecureContext) {
      navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch(function () {});
    } else {
      $('no-offline').hidden = false;
    }
    var s = session();
    state.tally = load('draft', null);  // a tally in progress survives a reload
    var first = code || !s || !tokens()[s.caravan.id] ? 'join' : 'setup';
    if (code && s && s.caravan && tokens()[s.caravan.id] && s.join_code === code) first = 'setup';
    // Reopen an unfinished tally where it was (a reload, or Android dropping the tab).
    var resume = first === 'setup' && hasDraft() && state.tally.caravan_id === s.caravan.id;
    Promise.all([loadCatalog(), setLang(chooseLang()).catch(function () { /* server strings stay */ })]).then(function () {
      if (s && s.display_name && !$('join-name').value) $('join-name').value = s.display_name;
      show(resume ? 'grid' : first);
      if (resume) message(t('draft.restored'), 'ok');
      sync(true);
    });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
})();
