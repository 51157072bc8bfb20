/* fieldsvc needs, plans and summaries pages: maps (Leaflet) and charts (Chart.js), served
   by fieldsvc itself. Data comes in <script type="application/json"> islands rendered by the
   server; nothing here reaches another host unless a tile server was configured. */
(function () {
  "use strict";

  function island(id) {
    var element = document.getElementById(id);
    return element ? JSON.parse(element.textContent) : null;
  }

  var COLOURS = { low: "#2a9d8f", mid: "#e9c46a", high: "#c1121f", none: "#8d99ae" };

  // Thirds of the communes shown, by rank: the neediest third is red whatever the scores'
  // spread (scores are means of percentiles; a region's first may score 0.59).
  function colour(rank, last) {
    if (!rank || !last) { return COLOURS.none; }
    if (rank <= last / 3) { return COLOURS.high; }
    if (rank <= 2 * last / 3) { return COLOURS.mid; }
    return COLOURS.low;
  }

  function number(value, digits) {
    if (value === null || value === undefined) { return "—"; }
    return Number(value).toLocaleString(document.documentElement.lang, {
      maximumFractionDigits: digits, minimumFractionDigits: digits
    });
  }

  function baseMap(element, tiles) {
    var map = L.map(element, { zoomSnap: 0.5 });
    map.attributionControl.setPrefix("Leaflet");
    map.attributionControl.addAttribution("HCP RGPH 2024");
    if (tiles) {
      L.tileLayer(tiles, { maxZoom: 18, attribution: "© OpenStreetMap" }).addTo(map);
    }
    return map;
  }

  function drawOutlines(map, url, focus) {
    if (!url) { return; }
    fetch(url, { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (collection) {
        var layer = L.geoJSON(collection, {
          interactive: false,
          style: function (feature) {
            var focused = feature.properties.code === focus;
            return { color: "#3d4654", weight: focused ? 2.5 : 1, fill: false,
                     className: "region-outline" };
          }
        }).addTo(map);
        layer.bringToBack();
        document.body.dataset.outlines = "drawn";
      });
  }

  // --- weights: show each slider's value
  Array.prototype.forEach.call(document.querySelectorAll(".weights input[type=range]"),
    function (input) {
      var output = document.getElementById(input.id + "_out");
      input.addEventListener("input", function () { if (output) { output.value = input.value; } });
    });

  // --- print a plan
  var printButton = document.getElementById("print-plan");
  if (printButton) { printButton.addEventListener("click", function () { window.print(); }); }

  // --- the need map
  var mapData = island("map-data");
  var mapElement = document.getElementById("need-map");
  if (mapData && mapElement && window.L) {
    var map = baseMap(mapElement, mapData.tiles);
    var panel = document.getElementById("commune-panel");
    var points = mapData.points;
    var largest = Math.max.apply(null, [1].concat(points.map(function (p) { return p.expected; })));
    var group = L.featureGroup();
    var showCommune = function (code) {
      fetch(mapData.detail.replace("CODE", encodeURIComponent(code)),
            { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) { return response.text(); })
        .then(function (html) {
          panel.innerHTML = html;
          panel.dataset.code = code;
          // On a phone the panel is under the map, out of sight: bring the answer into view.
          if (panel.getBoundingClientRect().top > window.innerHeight * 0.6) {
            panel.scrollIntoView({ block: "start" });
          }
        });
    };
    var last = Math.max.apply(null, [0].concat(points.map(function (p) { return p.rank || 0; })));
    // The neediest last, so that they are drawn on top of their neighbours.
    points.slice().reverse().forEach(function (p) {
      var marker = L.circleMarker([p.lat, p.lon], {
        radius: 3 + 12 * Math.sqrt(p.expected / largest),
        color: colour(p.rank, last), fillColor: colour(p.rank, last), fillOpacity: 0.7, weight: 1,
        className: "commune-point commune-" + p.code.replace(/\./g, "-")
      });
      marker.bindTooltip(p.name + " — " + mapData.labels.score + " " + number(p.score, 2) +
                         " · " + mapData.labels.expected + " " + number(p.expected, 1) +
                         (p.rank ? " · " + mapData.labels.rank + " " + p.rank : ""));
      marker.on("click", function () { showCommune(p.code); });
      marker.addTo(group);
    });
    group.addTo(map);
    if (points.length) {
      map.fitBounds(group.getBounds(), { padding: [12, 12], maxZoom: 9 });
    } else {
      map.setView([31.5, -7.5], 5);
    }
    drawOutlines(map, mapData.outlines, mapData.focus);
    mapElement.dataset.points = String(points.length);
  }

  // --- a plan's route
  var plan = island("plan-data");
  var planElement = document.getElementById("plan-map");
  if (plan && planElement && window.L) {
    var planMap = baseMap(planElement, planElement.dataset.tiles || null);
    var base = [plan.base.lat, plan.base.lon];
    var line = [base].concat(plan.stops.map(function (s) { return [s.lat, s.lon]; }), [base]);
    var route = L.polyline(line, { color: "#0b6e4f", weight: 3, className: "route" }).addTo(planMap);
    L.circleMarker(base, { radius: 7, color: "#1d2430", fillColor: "#1d2430", fillOpacity: 1,
                           className: "plan-base" }).addTo(planMap);
    plan.stops.forEach(function (stop, index) {
      L.circleMarker([stop.lat, stop.lon], { radius: 6, color: "#0b6e4f", fillColor: "#ffffff",
                                             fillOpacity: 1, className: "plan-stop" })
        .bindTooltip((index + 1) + ". " + stop.name_fr + " (" + stop.day + ")",
                     { permanent: true, direction: "top" })
        .addTo(planMap);
    });
    planMap.fitBounds(route.getBounds(), { padding: [24, 24], maxZoom: 11 });
    drawOutlines(planMap, planElement.dataset.outlines, null);
    planElement.dataset.route = String(line.length);
  }

  // --- summary charts: suppressed cells are drawn as a pale band on a hidden axis (never a
  // height that could be read as a value) and named as suppressed in the tooltip
  var chartData = island("chart-data");
  if (chartData && window.Chart) {
    var text = chartData.text;
    var rtl = document.documentElement.dir === "rtl";
    var SUPPRESSED = "rgba(141, 153, 174, 0.35)";
    var suppressedBand = function (series, value) {
      return {
        type: "bar", label: text.suppressed, yAxisID: "band", xAxisID: "x",
        data: series.suppressed.map(function (s) { return s ? value : null; }),
        backgroundColor: SUPPRESSED, borderColor: "#8d99ae", borderWidth: 1,
        barPercentage: 1, categoryPercentage: 1, grouped: false, order: 2
      };
    };
    var tooltip = {
      rtl: rtl,
      callbacks: {
        label: function (context) {
          if (context.dataset.yAxisID === "band" || context.dataset.xAxisID === "band") {
            return text.suppressed;
          }
          var value = context.raw;
          if (value === null || value === undefined) { return context.dataset.label + ": " + text.suppressed; }
          return context.dataset.label + ": " + Math.abs(value).toLocaleString(document.documentElement.lang);
        }
      }
    };
    var anyCount = function (series) {
      return series.counts.some(function (c) { return c !== null && c !== undefined; });
    };
    var legend = {
      rtl: rtl,
      labels: {  // the suppressed band once, however many datasets draw it
        filter: function (item, data) {
          for (var i = 0; i < item.datasetIndex; i += 1) {
            if (data.datasets[i].label === item.text) { return false; }
          }
          return true;
        }
      }
    };
    var common = function (extra, series) {
      var options = {
        responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { tooltip: tooltip, legend: legend },
        scales: {
          x: { reverse: rtl },
          // With every count suppressed there is no value to scale: no ticks that could be read.
          y: { beginAtZero: true, ticks: { display: !series || anyCount(series) } },
          band: { axis: "y", display: false, min: 0, max: 1 }
        }
      };
      Object.keys(extra || {}).forEach(function (key) { options[key] = extra[key]; });
      return options;
    };
    var specialty = chartData.charts.specialty;
    if (specialty && document.getElementById("chart-specialty")) {
      new Chart(document.getElementById("chart-specialty"), {
        type: "bar",
        data: { labels: specialty.labels, datasets: [
          { label: text.count, data: specialty.counts, backgroundColor: "#0b6e4f", order: 1 },
          suppressedBand(specialty, 1)
        ] },
        options: common(null, specialty)
      });
    }
    var pyramid = chartData.charts.pyramid;
    if (pyramid && document.getElementById("chart-pyramid")) {
      var bands = [];
      pyramid.keys.forEach(function (key) { if (bands.indexOf(key[1]) < 0) { bands.push(key[1]); } });
      bands.sort(function (a, b) { return parseInt(b, 10) - parseInt(a, 10); });
      var side = function (sex, sign, field) {
        return bands.map(function (band) {
          for (var i = 0; i < pyramid.keys.length; i += 1) {
            if (pyramid.keys[i][0] === sex && pyramid.keys[i][1] === band) {
              if (field === "suppressed") { return pyramid.suppressed[i] ? sign : null; }
              var count = pyramid.counts[i];
              return count === null ? null : sign * count;
            }
          }
          return 0;
        });
      };
      var bandOf = function (sex, sign) {
        return { type: "bar", label: text.suppressed, xAxisID: "band", yAxisID: "y",
                 data: side(sex, sign, "suppressed"), backgroundColor: SUPPRESSED,
                 borderColor: "#8d99ae", borderWidth: 1, grouped: false, order: 2 };
      };
      new Chart(document.getElementById("chart-pyramid"), {
        type: "bar",
        data: { labels: bands, datasets: [
          { label: text.women, data: side("F", -1), backgroundColor: "#9c4f96", grouped: false, order: 1 },
          { label: text.men, data: side("M", 1), backgroundColor: "#2a6f97", grouped: false, order: 1 },
          bandOf("F", -1), bandOf("M", 1)
        ] },
        options: common({
          indexAxis: "y",
          scales: {
            x: { reverse: rtl, ticks: { display: anyCount(pyramid),
                                        callback: function (v) { return Math.abs(v); } } },
            y: { stacked: true },
            band: { axis: "x", display: false, min: -1, max: 1, reverse: rtl }
          }
        })
      });
    }
    var trend = chartData.charts.trend;
    if (trend && document.getElementById("chart-trend")) {
      new Chart(document.getElementById("chart-trend"), {
        type: "line",
        data: { labels: trend.labels, datasets: [
          { label: text.count, data: trend.counts, borderColor: "#0b6e4f", backgroundColor: "#0b6e4f",
            spanGaps: false, order: 1 },
          suppressedBand(trend, 1)
        ] },
        options: common(null, trend)
      });
    }
    document.body.dataset.charts = "drawn";
  }
}());
