// The console's analytics page (role analyst): the published performance figures drilled down
// from departments to their services to a service's wards, with links to the raw exports. It
// reads the same public endpoints as the dashboard (/api/v1/open-data/...), with the dates and
// period chosen on the page; console.js checks the session and builds the page with this.
"use strict";

(function () {
  const console_ = window.citybotConsole;
  const {
    api, can, cell, byId, say, fill, button, link, rowHeader, actionsCell, fillRows, noAccess,
  } = console_;
  const T = byId("analytics-texts").dataset;
  const form = byId("analytics-filter");
  const OPEN_DATA = form.dataset.openData;
  const ANALYST_EXPORT = form.dataset.analystExport;
  const departments = JSON.parse(T.departments);

  function query(extra) {
    const params = new URLSearchParams({ period: byId("analytics-period").value });
    if (byId("analytics-from").value) params.set("from", byId("analytics-from").value);
    if (byId("analytics-to").value) params.set("to", byId("analytics-to").value);
    for (const [key, value] of Object.entries(extra || {})) params.set(key, value);
    return params;
  }

  function performance(extra) {
    // The open-data routes are public and under the admin API's prefix: api() adds nothing
    // they need but turns a refusal into the console's usual message.
    return api("GET", "/open-data/performance?" + query(extra).toString());
  }

  function csv(path, extra) {
    const params = query(Object.assign({ format: "csv" }, extra || {}));
    if (path === "/requests") params.delete("period");
    return OPEN_DATA + path + "?" + params.toString();
  }

  // The analysts' own export (references, exact points; audited), for the dates chosen.
  function analystCsv(extra) {
    const params = query(extra);
    params.delete("period");
    const q = params.toString();
    return ANALYST_EXPORT + (q ? "?" + q : "");
  }

  function days(hours) {
    return hours === null || hours === undefined ? "" : (hours / 24).toFixed(1);
  }

  function share(value) {
    return value === null || value === undefined ? "" : Math.round(value * 100) + " %";
  }

  function titleOf(code) {
    for (const department of departments) {
      for (const service of department.services) {
        if (service.code === code) return service.title;
      }
    }
    return code;
  }

  function latest(rows) {
    return rows.reduce((m, r) => (m === null || r.period_start > m ? r.period_start : m), null);
  }

  function ratio(d) {
    return d && d.ratio !== null && d.ratio !== undefined
      ? d.ratio.toFixed(2) + " (" + d.ci_low.toFixed(2) + "–" + d.ci_high.toFixed(2) + ")"
      : "";
  }

  // Each department's figures in the latest period (medians over its own requests).
  async function showDepartments() {
    const answer = await performance({ group: "department" });
    const period = latest(answer.rows);
    byId("departments-period").textContent = period ? fill(T.latest, { period }) : "";
    const rows = new Map(answer.rows.filter((r) => r.period_start === period).map((r) => [r.key, r]));
    const disparity = new Map(
      (answer.disparity || []).filter((d) => d.period_start === period).map((d) => [d.key, d])
    );
    fillRows(byId("departments-table").tBodies[0], departments, (tr, department) => {
      const r = rows.get(department.name);
      rowHeader(tr, department.name);
      cell(tr, !r ? 0 : r.suppressed ? T.suppressed : r.count);
      cell(tr, r ? days(r.close_hours_p50) : "");
      cell(tr, r ? days(r.close_hours_p90) : "");
      cell(tr, r ? share(r.closed_within_target) : "");
      cell(tr, ratio(disparity.get(department.name)));
      actionsCell(tr).appendChild(
        button(T.open, fill(T.openOf, { department: department.name }), () =>
          showServices(department)
        )
      );
    });
  }

  // A department's services, period by period.
  async function showServices(department) {
    const answer = await performance({ group: "service", department: department.name });
    const rows = answer.rows
      .slice()
      .sort((a, b) => b.period_start.localeCompare(a.period_start) || a.key.localeCompare(b.key));
    fillRows(byId("services-table").tBodies[0], rows, (tr, r) => {
      const title = titleOf(r.key);
      rowHeader(tr, title);
      cell(tr, r.period_start);
      cell(tr, r.suppressed ? T.suppressed : r.count);
      cell(tr, r.ack_hours_p50 === null ? "" : r.ack_hours_p50.toFixed(1));
      cell(tr, days(r.close_hours_p50));
      cell(tr, days(r.close_hours_p90));
      cell(tr, share(r.closed_within_target));
      const actions = actionsCell(tr);
      actions.appendChild(
        button(T.byWard, fill(T.byWardOf, { service: title }), () => showWards(r.key, title))
      );
      actions.appendChild(document.createTextNode(" "));
      actions.appendChild(
        link(
          T.requestsCsv,
          fill(T.requestsCsvOf, { service: title }),
          csv("/requests", { service: r.key })
        )
      );
    });
    byId("department-export").href = analystCsv({ department: department.name });
    byId("services-heading").textContent = fill(T.servicesOf, { department: department.name });
    byId("services-section").hidden = false;
    byId("wards-section").hidden = true;
    byId("services-heading").focus();
  }

  async function showWards(service, title) {
    const answer = await performance({ group: "ward", service: service });
    const disparity = new Map(
      (answer.disparity || []).map((d) => [d.period_start + "|" + d.key, d])
    );
    const rows = answer.rows
      .slice()
      .sort(
        (a, b) =>
          b.period_start.localeCompare(a.period_start) ||
          (Number(a.key) || 1e9) - (Number(b.key) || 1e9)
      );
    fillRows(byId("wards-table").tBodies[0], rows, (tr, r) => {
      rowHeader(tr, r.key === "unknown" ? T.unknown : r.key);
      cell(tr, r.period_start);
      cell(tr, r.suppressed ? T.suppressed : r.count);
      cell(tr, days(r.close_hours_p50));
      cell(tr, days(r.close_hours_p90));
      cell(tr, share(r.closed_within_target));
      cell(tr, ratio(disparity.get(r.period_start + "|" + r.key)));
    });
    byId("wards-csv").href = csv("/performance", { group: "ward", service: service });
    byId("wards-requests-csv").href = csv("/requests", { service: service });
    byId("wards-heading").textContent = fill(T.wardsOf, { service: title });
    byId("wards-section").hidden = false;
    byId("wards-heading").focus();
  }

  async function showAlerts() {
    const answer = await api("GET", "/equity-alerts");
    byId("alerts-rule").textContent = fill(T.alertsRule, {
      threshold: answer.threshold,
      period: answer.period,
    });
    fillRows(byId("alerts-table").tBodies[0], answer.items, (tr, alert) => {
      rowHeader(tr, titleOf(alert.service));
      cell(tr, alert.ward);
      cell(tr, alert.period_start);
      cell(
        tr,
        alert.ratio.toFixed(2) + " (" + alert.ci_low.toFixed(2) + "–" + alert.ci_high.toFixed(2) + ")"
      );
      cell(tr, alert.previous_ratio.toFixed(2) + " (" + alert.previous_start + ")");
      cell(tr, alert.informal_count + ", " + alert.formal_count);
    });
  }

  // Early warning's precision by week (confirmed / suggested), oldest week first.
  async function showPrecision() {
    const answer = await api("GET", "/incident-suggestions/precision?weeks=12");
    fillRows(byId("precision-table").tBodies[0], answer.weeks, (tr, week) => {
      rowHeader(tr, week.week);
      cell(tr, week.suggested);
      cell(tr, week.confirmed);
      cell(tr, week.dismissed);
      cell(tr, share(week.precision));
    });
  }

  function updateExports() {
    for (const a of document.querySelectorAll("a[data-export]")) {
      const kind = a.dataset.export;
      a.href =
        kind === "analyst"
          ? analystCsv()
          : kind === "requests"
            ? csv("/requests")
            : csv("/performance", { group: kind.replace("performance-", "") });
    }
  }

  console_.pages.analytics = async function () {
    if (!can("analytics.view")) {
      noAccess(T.noAccess);
      return;
    }
    form.addEventListener(
      "submit",
      console_.guarded(async () => {
        updateExports();
        await showDepartments();
        byId("services-section").hidden = true;
        byId("wards-section").hidden = true;
      })
    );
    updateExports();
    await showDepartments();
    await showAlerts();
    await showPrecision();
    say("");
  };
})();
