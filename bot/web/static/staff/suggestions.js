// The console's suggested incidents (roles supervisor, broadcaster, approver): what early
// warning found, newest first; one opened shows the reports behind it (where and when, nothing
// personal) and is confirmed (declared an incident) or dismissed with a reason. console.js
// checks the session and builds the page with this.
"use strict";

(function () {
  const {
    pages, api, acting, guarded, say, warn, cell, byId, button, pager, when, fill, fromLocal,
    actionsCell, fillRows, queryOf,
  } = window.citybotConsole;
  const T = byId("suggestion-texts").dataset;

  pages["incident-suggestions"] = async function () {
    const tbody = byId("suggestions-table").tBodies[0];
    let chosen = null;

    function against(s) {
      return fill(T.against, { count: s.count, expected: s.expected.toFixed(2) });
    }

    function addRow(row, s) {
      cell(row, s.service_title);
      cell(row, s.area_name);
      cell(row, s.wards.join(", "));
      cell(row, s.report_count);
      cell(row, against(s));
      cell(row, when(s.first_report_at));
      cell(row, when(s.latest_report_at));
      cell(row, s.status);
      const name = fill(T.heading, { service: s.service_title, area: s.area_name });
      actionsCell(row).appendChild(button(T.open, fill(T.openOf, { name }), () => open(s.id)));
    }

    async function open(id) {
      const s = await api("GET", "/incident-suggestions/" + id);
      chosen = s;
      byId("chosen").hidden = false;
      const heading = byId("chosen-heading");
      heading.textContent = fill(T.heading, { service: s.service_title, area: s.area_name });
      byId("chosen-summary").textContent =
        fill(T.summary, {
          reports: s.report_count,
          first: when(s.first_report_at),
          latest: when(s.latest_report_at),
          count: s.count,
          expected: s.expected.toFixed(2),
        }) + (s.status === "suggested" ? "" : " " + fill(T.decided, { status: s.status }));
      fillRows(byId("reports-table").tBodies[0], s.reports, (row, r) => {
        cell(row, r.reference);
        cell(row, when(r.received_at));
        cell(row, r.ward);
        cell(row, r.suburb);
        cell(row, r.precision);
        cell(row, r.status);
      });
      byId("decide").hidden = s.status !== "suggested";
      heading.focus();
    }

    const listed = pager("/incident-suggestions", tbody, byId("suggestions-more"), addRow);

    async function reload() {
      await listed.filter(queryOf({ status: byId("filter-status").value }));
    }

    byId("suggestions-filter").addEventListener("submit", guarded(reload));

    byId("confirm-form").addEventListener("submit", acting(async () => {
      if (!chosen) return;
      const body = {};
      const title = byId("confirm-title").value.trim();
      if (title) body.title = title;
      const text = byId("confirm-text-en").value.trim();
      if (text) body.text_en = text;
      const end = fromLocal(byId("confirm-expected-end").value);
      if (end) body.expected_end_at = end;
      const done = await api("POST", "/incident-suggestions/" + chosen.id + "/confirm", body);
      byId("confirm-form").reset();
      say(fill(T.confirmed, { incident: done.incident_id, told: done.residents_told }));
      await open(chosen.id);
      await reload();
    }));

    byId("dismiss-form").addEventListener("submit", acting(async () => {
      if (!chosen) return;
      const reason = byId("dismiss-reason").value.trim();
      if (!reason) {
        byId("dismiss-reason").focus();
        return warn(byId("dismiss-reason-hint").textContent);
      }
      await api("POST", "/incident-suggestions/" + chosen.id + "/dismiss", { reason });
      byId("dismiss-form").reset();
      say(T.dismissed);
      await open(chosen.id);
      await reload();
    }));

    await reload();
  };
})();
