/* The public dashboard: reads the open performance figures and draws them.
 *
 * The page (bot/web/templates/dashboard/dashboard.html) is rendered on the server in the
 * reader's language, with this script's words in the hidden #texts element: the Content
 * Security Policy allows no inline script. Charts are drawn with the vendored Chart.js; every
 * chart's figures also go into its table, which is what screen readers and keyboards use, and
 * every series differs by more than its colour (line dashes, point shapes, legends, labels).
 */
(function () {
  "use strict";

  const body = document.body;
  const locale = body.dataset.locale || "en";
  const period = body.dataset.period || "month";
  const texts = document.getElementById("texts");
  const statusLine = document.getElementById("status");
  const alertLine = document.getElementById("alert");
  const serviceNames = JSON.parse(texts.getAttribute("data-services") || "{}");

  // Area types in the order they are drawn, each with a colour from the Okabe-Ito palette
  // (told apart with colour blindness) and a line dash and point shape of its own.
  const AREAS = [
    { key: "informal_settlement", colour: "#d55e00", dash: [], point: "triangle" },
    { key: "formal", colour: "#0072b2", dash: [8, 4], point: "rect" },
    { key: "mixed", colour: "#009e73", dash: [2, 3], point: "circle" },
    { key: "unknown", colour: "#595959", dash: [12, 3, 2, 3], point: "crossRot" },
  ];
  const MAP_BINS = 5;
  const TOP = 10;
  // Periods shown on the time chart: a year of months, or about four months of weeks.
  const PERIODS_SHOWN = period === "week" ? 16 : 12;

  function text(name, values) {
    let value = texts.getAttribute("data-" + name) || name;
    for (const [key, replacement] of Object.entries(values || {})) {
      value = value.split("{" + key + "}").join(String(replacement));
    }
    return value;
  }

  const oneDecimal = new Intl.NumberFormat(locale, {
    minimumFractionDigits: 1,
    maximumFractionDigits: 1,
  });
  const whole = new Intl.NumberFormat(locale);
  const percent = new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 0 });

  function days(hours) {
    return hours === null || hours === undefined ? null : hours / 24;
  }
  function showDays(hours) {
    const value = days(hours);
    return value === null ? "" : oneDecimal.format(value);
  }
  function showShare(share) {
    return share === null || share === undefined ? "" : percent.format(share);
  }
  // Dates are written with the page's own month names (a browser may have no isiZulu or
  // isiXhosa calendar data): "Month of November 2026" in tables and notes, "November 2026"
  // under a chart's axis; weeks by their Monday, "2 November 2026".
  function periodDate(start) {
    const [year, month, day] = start.split("-").map(Number);
    const name = text("month-" + month);
    return period === "week" ? day + " " + name + " " + year : name + " " + year;
  }
  function periodLabel(start) {
    const name = period === "week" ? "period-week" : "period-month";
    return text(name, { date: periodDate(start) });
  }
  function areaName(key) {
    return texts.getAttribute("data-area-" + key) || key;
  }
  function serviceName(key) {
    return serviceNames[key] || key;
  }
  function wardName(key) {
    return key === "unknown" || !key ? text("unknown-ward") : text("ward", { ward: key });
  }
  function wardOrder(a, b) {
    const x = Number(a);
    const y = Number(b);
    if (Number.isNaN(x) || Number.isNaN(y)) {
      return Number.isNaN(x) - Number.isNaN(y) || String(a).localeCompare(String(b));
    }
    return x - y;
  }

  // A long service name on a phone would push the bars off the screen: Chart.js draws an
  // array as lines, so names are broken between words into lines of about 22 characters
  // (30 where the screen is wide).
  const LINE = window.matchMedia("(min-width: 48rem)").matches ? 30 : 22;
  function wrap(label) {
    const lines = [];
    for (const word of String(label).split(" ")) {
      const last = lines.length - 1;
      if (last >= 0 && (lines[last] + " " + word).length <= LINE) {
        lines[last] += " " + word;
      } else {
        lines.push(word);
      }
    }
    return lines;
  }

  async function getJson(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) {
      throw new Error(url + ": " + response.status);
    }
    return response.json();
  }

  // The period in progress is left out while an earlier one has figures: its medians count
  // only the requests already closed, the quick ones, and would flatter it.
  function currentPeriodStart() {
    const now = new Date();
    const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    if (period === "week") {
      start.setUTCDate(now.getUTCDate() - ((now.getUTCDay() + 6) % 7)); // back to Monday
    }
    return start.toISOString().slice(0, 10);
  }

  async function figures(group) {
    const query = new URLSearchParams({ group: group, period: period });
    const answer = await getJson(body.dataset.performance + "?" + query.toString());
    const current = currentPeriodStart();
    if (answer.rows.some((r) => r.period_start < current)) {
      answer.rows = answer.rows.filter((r) => r.period_start < current);
      answer.disparity = (answer.disparity || []).filter((d) => d.period_start < current);
    }
    return answer;
  }

  function latestPeriod(rows) {
    let latest = null;
    for (const row of rows) {
      if (!row.suppressed && (latest === null || row.period_start > latest)) {
        latest = row.period_start;
      }
    }
    return latest;
  }

  function fillTable(id, rows) {
    const tbody = document.querySelector("#" + id + " tbody");
    tbody.replaceChildren();
    for (const cells of rows) {
      const tr = document.createElement("tr");
      cells.forEach(function (value, index) {
        const cell = document.createElement(index === 0 ? "th" : "td");
        if (index === 0) {
          cell.scope = "row";
        }
        cell.textContent = value;
        tr.append(cell);
      });
      tbody.append(tr);
    }
    if (!rows.length) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = document.querySelectorAll("#" + id + " thead th").length;
      td.textContent = text("nothing");
      tr.append(td);
      tbody.append(tr);
    }
  }

  function notePeriod(section, start) {
    for (const note of document.querySelectorAll('[data-period-of="' + section + '"]')) {
      note.textContent = start ? text("latest", { period: periodLabel(start) }) : "";
    }
  }

  function suppressedOr(row, value) {
    return row.suppressed ? text("suppressed") : value;
  }

  const charts = {};
  function draw(id, config) {
    if (charts[id]) {
      charts[id].destroy();
    }
    config.options = Object.assign(
      {
        locale: locale,
        animation: false,
        maintainAspectRatio: false,
        responsive: true,
      },
      config.options || {}
    );
    charts[id] = new window.Chart(document.getElementById(id), config);
  }

  function daysAxis() {
    return { beginAtZero: true, title: { display: true, text: text("days") } };
  }

  // Time to close by area type, period by period.
  function showByArea(answer) {
    const starts = Array.from(new Set(answer.rows.map((r) => r.period_start)))
      .sort()
      .slice(-PERIODS_SHOWN);
    const shown = answer.rows.filter((r) => starts.includes(r.period_start));
    const datasets = AREAS.filter((a) => shown.some((r) => r.key === a.key)).map(function (area) {
      return {
        label: areaName(area.key),
        data: starts.map(function (start) {
          const row = shown.find((r) => r.key === area.key && r.period_start === start);
          return row && !row.suppressed ? days(row.close_hours_p50) : null;
        }),
        borderColor: area.colour,
        backgroundColor: area.colour,
        borderDash: area.dash,
        pointStyle: area.point,
        pointRadius: 5,
        borderWidth: 3,
        spanGaps: false,
      };
    });
    draw("by-area-chart", {
      type: "line",
      data: { labels: starts.map(periodDate), datasets: datasets },
      options: {
        scales: { y: daysAxis() },
        plugins: { legend: { labels: { usePointStyle: true } } },
      },
    });
    const order = AREAS.map((a) => a.key);
    const rows = shown
      .slice()
      .sort(
        (a, b) =>
          b.period_start.localeCompare(a.period_start) || order.indexOf(a.key) - order.indexOf(b.key)
      )
      .map((r) => [
        periodLabel(r.period_start),
        areaName(r.key),
        whole.format(r.count),
        suppressedOr(r, showDays(r.close_hours_p50)),
        suppressedOr(r, showDays(r.close_hours_p90)),
        suppressedOr(r, showShare(r.closed_within_target)),
      ]);
    fillTable("by-area-table", rows);

    const overall = (answer.disparity || [])
      .filter((d) => d.ratio !== null && d.ratio !== undefined)
      .sort((a, b) => b.period_start.localeCompare(a.period_start))[0];
    const line = document.getElementById("overall-disparity");
    if (overall) {
      line.textContent = text("overall", {
        ratio: oneDecimal.format(overall.ratio),
        low: oneDecimal.format(overall.ci_low),
        high: oneDecimal.format(overall.ci_high),
      });
      line.hidden = false;
    }
  }

  function latestRows(answer) {
    const latest = latestPeriod(answer.rows);
    return { latest: latest, rows: answer.rows.filter((r) => r.period_start === latest) };
  }

  // Each service in the latest period: median and 90th percentile days to close.
  function showByService(answer) {
    const { latest, rows } = latestRows(answer);
    notePeriod("by-service", latest);
    const published = rows
      .filter((r) => !r.suppressed)
      .sort((a, b) => (b.close_hours_p50 || 0) - (a.close_hours_p50 || 0));
    draw("by-service-chart", {
      type: "bar",
      data: {
        labels: published.map((r) => wrap(serviceName(r.key))),
        datasets: [
          {
            label: text("median"),
            data: published.map((r) => days(r.close_hours_p50)),
            backgroundColor: "#0072b2",
          },
          {
            label: text("p90"),
            data: published.map((r) => days(r.close_hours_p90)),
            backgroundColor: "#e69f00",
            borderColor: "#1a1a1a",
            borderWidth: 1,
          },
        ],
      },
      options: { indexAxis: "y", scales: { x: daysAxis(), y: { ticks: { autoSkip: false } } } },
    });
    fillTable(
      "by-service-table",
      rows
        .slice()
        .sort((a, b) => serviceName(a.key).localeCompare(serviceName(b.key), locale))
        .map((r) => [
          serviceName(r.key),
          whole.format(r.count),
          suppressedOr(r, r.ack_hours_p50 === null ? "" : oneDecimal.format(r.ack_hours_p50)),
          suppressedOr(r, showDays(r.close_hours_p50)),
          suppressedOr(r, showDays(r.close_hours_p90)),
          suppressedOr(r, showShare(r.closed_within_target)),
        ])
    );
    showDisparity("services", answer, serviceName);
  }

  // The quantile edges of the wards' medians: each bin holds about as many wards.
  function binEdges(values) {
    const sorted = values.slice().sort((a, b) => a - b);
    const edges = [];
    for (let i = 1; i < MAP_BINS; i += 1) {
      edges.push(sorted[Math.min(sorted.length - 1, Math.floor((i * sorted.length) / MAP_BINS))]);
    }
    return edges;
  }

  function binOf(value, edges) {
    let bin = 0;
    while (bin < edges.length && value >= edges[bin]) {
      bin += 1;
    }
    return bin;
  }

  function legendItem(className, label) {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch " + className;
    swatch.setAttribute("aria-hidden", "true");
    item.append(swatch, document.createTextNode(label));
    return item;
  }

  async function showByWard(answer) {
    const { latest, rows } = latestRows(answer);
    notePeriod("by-ward", latest);
    notePeriod("disparity", latest);
    const byWard = new Map(rows.map((r) => [r.key, r]));
    const published = rows.filter((r) => !r.suppressed && r.close_hours_p50 !== null);
    const edges = binEdges(published.map((r) => days(r.close_hours_p50)));

    const legend = document.getElementById("ward-legend");
    legend.replaceChildren();
    const bounds = [0].concat(edges);
    const top = published.length ? Math.max(...published.map((r) => days(r.close_hours_p50))) : 0;
    bounds.forEach(function (low, bin) {
      const high = bin < edges.length ? edges[bin] : top;
      if (bin > 0 && high === bounds[bin] && bin < edges.length) {
        return; // an empty bin (several equal edges) says nothing
      }
      legend.append(
        legendItem(
          "bin-" + bin,
          text("legend-range", { low: oneDecimal.format(low), high: oneDecimal.format(high) })
        )
      );
    });
    legend.append(legendItem("no-data", text("legend-none")));

    fillTable(
      "by-ward-table",
      rows
        .slice()
        .sort((a, b) => wardOrder(a.key, b.key))
        .map((r) => [
          wardName(r.key),
          whole.format(r.count),
          suppressedOr(r, showDays(r.close_hours_p50)),
          suppressedOr(r, showDays(r.close_hours_p90)),
          suppressedOr(r, showShare(r.closed_within_target)),
        ])
    );
    showDisparity("wards", answer, wardName);

    const response = await fetch(body.dataset.wardsSvg);
    if (!response.ok) {
      throw new Error(body.dataset.wardsSvg + ": " + response.status);
    }
    const parsed = new DOMParser().parseFromString(await response.text(), "image/svg+xml");
    const svg = document.importNode(parsed.documentElement, true);
    // The map is described once, by its container; its parts are decoration for assistive tech.
    svg.removeAttribute("role");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.prepend(hatchPattern());
    for (const path of svg.querySelectorAll("path[data-ward]")) {
      const row = byWard.get(path.dataset.ward);
      const title = path.querySelector("title");
      if (row && !row.suppressed && row.close_hours_p50 !== null) {
        path.classList.add("bin-" + binOf(days(row.close_hours_p50), edges));
        title.textContent = text("ward-value", {
          ward: path.dataset.ward,
          days: showDays(row.close_hours_p50),
        });
      } else {
        path.classList.add("no-data");
        title.textContent = text("ward-none", { ward: path.dataset.ward });
      }
    }
    document.getElementById("ward-map").replaceChildren(svg);
  }

  function svgElement(name, attributes) {
    const element = document.createElementNS("http://www.w3.org/2000/svg", name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
    return element;
  }

  function hatchPattern() {
    const pattern = svgElement("pattern", {
      id: "hatch",
      patternUnits: "userSpaceOnUse",
      width: "8",
      height: "8",
      patternTransform: "rotate(45)",
    });
    pattern.append(
      svgElement("rect", { width: "8", height: "8", class: "hatch-ground" }),
      svgElement("rect", { width: "3", height: "8", class: "hatch-line" })
    );
    const defs = svgElement("defs", {});
    defs.append(pattern);
    return defs;
  }

  // The largest disparities in the latest period that has any, with their intervals.
  function showDisparity(kind, answer, name) {
    const measured = (answer.disparity || []).filter(
      (d) => d.ratio !== null && d.ratio !== undefined
    );
    const latest = measured.reduce((m, d) => (m === null || d.period_start > m ? d.period_start : m), null);
    const largest = measured
      .filter((d) => d.period_start === latest)
      .sort((a, b) => b.ratio - a.ratio)
      .slice(0, TOP);
    draw("disparity-" + kind + "-chart", {
      type: "bar",
      data: {
        labels: largest.map((d) => wrap(name(d.key))),
        datasets: [
          {
            label: text("disparity"),
            data: largest.map((d) => d.ratio),
            backgroundColor: "#d55e00",
          },
        ],
      },
      options: {
        indexAxis: "y",
        scales: {
          x: { beginAtZero: true, title: { display: true, text: text("disparity") } },
          y: { ticks: { autoSkip: false } },
        },
        plugins: { legend: { display: false } },
      },
    });
    fillTable(
      "disparity-" + kind + "-table",
      largest.map((d) => [
        name(d.key),
        oneDecimal.format(d.ratio),
        oneDecimal.format(d.ci_low) + " – " + oneDecimal.format(d.ci_high),
        whole.format(d.informal_count),
        whole.format(d.formal_count),
      ])
    );
    if (!largest.length) {
      const cell = document.querySelector("#disparity-" + kind + "-table tbody td");
      cell.textContent = text("no-disparity");
    }
  }

  // Public transport reliability (issue 18): counts by group, suppressed groups said so.
  const PROBLEMS = ["no_show", "late", "full", "could_not_board", "unsafe"];

  function groupName(table, key) {
    return table === "area_type" ? areaName(key) : texts.getAttribute("data-group-" + key) || key;
  }

  function showTransport(answer) {
    for (const [table, id] of [
      ["area_type", "transport-area-table"],
      ["gender", "transport-gender-table"],
      ["disability", "transport-disability-table"],
    ]) {
      fillTable(
        id,
        answer.by[table].map(function (row) {
          if (row.suppressed) {
            return [groupName(table, row.group), text("suppressed"), "", "", "", "", ""];
          }
          return [
            groupName(table, row.group),
            whole.format(row.reports),
            ...PROBLEMS.map(function (problem) {
              const value = row.problems[problem];
              return value === null ? text("suppressed") : whole.format(value);
            }),
          ];
        }),
      );
    }
  }

  async function main() {
    if (window.Chart) {
      window.Chart.defaults.font.size = 14;
      window.Chart.defaults.color = "#1a1a1a";
    }
    try {
      const [byArea, byService, byWard] = await Promise.all([
        figures("area_type"),
        figures("service"),
        figures("ward"),
      ]);
      // Synthetic requests (citybot demo seed) are counted: say so before any figure.
      document.getElementById("demo-note").hidden = ![byArea, byService, byWard].some(
        (answer) => answer.demo
      );
      showByArea(byArea);
      showByService(byService);
      await showByWard(byWard);
      showTransport(await getJson(body.dataset.transport));
      statusLine.textContent = byArea.rows.length ? text("loaded") : text("nothing");
      body.dataset.ready = "true";
    } catch (error) {
      statusLine.textContent = "";
      alertLine.textContent = text("failed");
      body.dataset.ready = "failed";
      throw error;
    }
  }

  main();
})();
