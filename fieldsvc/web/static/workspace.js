/* The coordinator's workspace: small progressive enhancements (every page works without them). */
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  // --- The commune picker: the areas search fills the input's <datalist> as one types. ---
  function communeSearch(input, onPick) {
    var list = document.getElementById(input.getAttribute("list"));
    var url = input.getAttribute("data-commune-search");
    var timer = null, last = "";
    function pick() {
      var options = list.querySelectorAll("option");
      for (var i = 0; i < options.length; i++) {
        if (options[i].value === input.value) { onPick(options[i]); return; }
      }
    }
    input.addEventListener("input", function () {
      pick();
      var q = input.value.trim();
      if (q.length < 2 || q === last || /\(\d{2}\.\d{3}\.\d{2}\.\d{2}\)$/.test(q)) { return; }
      clearTimeout(timer);
      timer = setTimeout(function () {
        last = q;
        fetch(url + "?level=commune&limit=20&q=" + encodeURIComponent(q), {headers: {Accept: "application/json"}})
          .then(function (r) { return r.ok ? r.json() : {items: []}; })
          .then(function (page) {
            if (input.value.trim() !== q) { return; }
            list.textContent = "";
            page.items.forEach(function (area) {
              var option = document.createElement("option");
              option.value = area.name_fr + " — " + area.name_ar + " (" + area.code + ")";
              if (area.point) { option.setAttribute("data-lat", area.point.lat); option.setAttribute("data-lon", area.point.lon); }
              list.appendChild(option);
            });
          })
          .catch(function () { /* offline: the server resolves the typed name instead */ });
      }, 180);
    });
    input.addEventListener("change", pick);
  }

  // --- The site map: no tiles, the commune's point and its 50 km circle; a click fills a point. ---
  function siteMap(box) {
    if (!window.L) { return null; }
    box.hidden = false;
    box.setAttribute("role", "application");
    box.setAttribute("aria-label", box.getAttribute("data-label"));
    var map = L.map(box, {attributionControl: false}).setView([31.8, -7.1], 5);
    var layer = L.layerGroup().addTo(map);
    var marks = L.layerGroup().addTo(map);
    function show(lat, lon) {
      layer.clearLayers();
      if (isNaN(lat) || isNaN(lon)) { return; }
      L.circle([lat, lon], {radius: 50000, color: "#0b6e4f", weight: 1, fillOpacity: 0.05}).addTo(layer);
      L.circleMarker([lat, lon], {radius: 6, color: "#0b6e4f"}).addTo(layer);
      map.setView([lat, lon], 9);
    }
    show(parseFloat(box.getAttribute("data-lat")), parseFloat(box.getAttribute("data-lon")));
    map.on("click", function (event) {
      var fields = document.querySelectorAll("[data-site-location]");
      for (var i = 0; i < fields.length; i++) {
        if (!fields[i].value.trim()) {
          fields[i].value = event.latlng.lat.toFixed(5) + ", " + event.latlng.lng.toFixed(5);
          L.circleMarker(event.latlng, {radius: 5, color: "#a4161a"}).addTo(marks);
          fields[i].focus();
          return;
        }
      }
    });
    return show;
  }

  // --- The paper sheet: row totals and the consultations total as one types. ---
  function sheetTotals(table) {
    function update() {
      var total = 0;
      table.querySelectorAll("tbody tr").forEach(function (row) {
        var sum = 0;
        row.querySelectorAll("input.count").forEach(function (input) {
          var n = parseInt(input.value, 10);
          if (!isNaN(n) && n > 0) {
            sum += n;
            if (input.getAttribute("data-measure") === "consultations") { total += n; }
          }
        });
        var cell = row.querySelector("[data-row-total]");
        if (cell) { cell.textContent = String(sum); }
      });
      var out = table.querySelector("[data-measure-total='consultations']");
      if (out) { out.textContent = String(total); }
    }
    table.addEventListener("input", update);
    update();
  }

  ready(function () {
    var box = document.getElementById("site-map");
    var show = box ? siteMap(box) : null;
    var commune = document.querySelector("[data-commune-search]");
    if (commune) {
      communeSearch(commune, function (option) {
        if (show) { show(parseFloat(option.getAttribute("data-lat")), parseFloat(option.getAttribute("data-lon"))); }
      });
    }
    var sheet = document.querySelector("[data-sheet]");
    if (sheet) { sheetTotals(sheet); }
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { window.print(); });
    });
  });
}());
