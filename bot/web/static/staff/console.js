// The staff console: every page is a shell rendered on the server; this script fills it in
// through the admin API (/api/v1) with the session cookie and the session's CSRF token. It holds
// no power of its own: what a person sees and may do is what the API answers.
"use strict";

(function () {
  const body = document.body;
  const API = body.dataset.api;
  const CONSOLE = body.dataset.console;
  const PAGE = body.dataset.page;
  const T = document.getElementById("texts").dataset;
  const byId = (id) => document.getElementById(id);
  let csrf = null;
  let me = null;

  function fill(text, values) {
    return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? values[name] : whole));
  }

  function say(text) {
    byId("alert").textContent = "";
    byId("status").textContent = text;
  }

  function warn(text) {
    byId("status").textContent = "";
    byId("alert").textContent = text;
  }

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  // One call to the admin API; a refusal becomes an ApiError with the API's code and message.
  async function api(method, path, json) {
    const headers = { Accept: "application/json" };
    if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
    const init = { method, headers, credentials: "same-origin" };
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(json);
    }
    let response;
    try {
      response = await fetch(API + path, init);
    } catch (e) {
      throw new ApiError(0, "network", T.network);
    }
    const answer = await response.json().catch(() => null);
    if (!response.ok) {
      const error = (answer && answer.error) || {};
      throw new ApiError(response.status, error.code || "error", error.message || T.network);
    }
    return answer;
  }

  function toSignIn() {
    const next = encodeURIComponent(location.pathname + location.search);
    location.assign(CONSOLE + "/sign-in?next=" + next);
  }

  // What every failed call does: no session sends the person to sign in, a 403 is the
  // "you do not have access" page, anything else is said in the alert region.
  function failed(error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 401) {
      toSignIn();
    } else if (error.status === 403 && error.code === "password_change_required") {
      location.assign(CONSOLE + "/password");
    } else if (error.status === 403 && error.code !== "csrf_failed") {
      byId("content").hidden = true;
      byId("no-access-why").textContent = error.message;
      byId("no-access").hidden = false;
      document.title = byId("no-access-heading").textContent + " · " + document.title;
    } else {
      warn(error.message);
    }
  }

  function guarded(handler) {
    return async (event) => {
      if (event) event.preventDefault();
      try {
        await handler(event);
      } catch (error) {
        failed(error);
      }
    };
  }

  // -- small builders ------------------------------------------------------------------------

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined || text === "" ? "–" : String(text);
    row.appendChild(td);
    return td;
  }

  function button(text, label, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    if (label) b.setAttribute("aria-label", label);
    b.addEventListener("click", guarded(onClick));
    return b;
  }

  function when(iso) {
    return iso ? iso.replace("T", " ").replace(/(\.\d+)?Z$/, "") : "";
  }

  function list(text) {
    return text.split(",").map((s) => s.trim()).filter((s) => s);
  }

  function checkedRoles(form) {
    return Array.from(form.querySelectorAll("input[name=roles]:checked")).map((i) => i.value);
  }

  function setRoles(form, roles) {
    form.querySelectorAll("input[name=roles]").forEach((i) => {
      i.checked = roles.includes(i.value);
    });
  }

  function empty(tbody, columns) {
    if (tbody.rows.length) return;
    const row = tbody.insertRow();
    const td = cell(row, T.nothing);
    td.colSpan = columns;
  }

  function can(permission) {
    return !permission || (me && me.permissions.includes(permission));
  }

  // A paged list: the first page, then "more" asks for the page after next_cursor.
  function pager(path, tbody, more, columns, addRow) {
    let cursor = null;
    let query = "";
    async function load(reset) {
      if (reset) {
        cursor = null;
        tbody.replaceChildren();
      }
      const params = new URLSearchParams(query);
      if (cursor !== null) params.set("cursor", cursor);
      const q = params.toString();
      const page = await api("GET", path + (q ? "?" + q : ""));
      page.items.forEach((item) => addRow(tbody.insertRow(), item));
      cursor = page.next_cursor;
      more.hidden = cursor === null;
      empty(tbody, columns);
    }
    more.addEventListener("click", guarded(() => load(false)));
    return {
      load,
      filter(params) {
        query = params;
        return load(true);
      },
    };
  }

  // -- pages ----------------------------------------------------------------------------------

  const pages = {};
  // A page with a script of its own (static/staff/analytics.js, loaded after this one) adds
  // its page here and builds it with these.
  window.citybotConsole = { pages, api, failed, guarded, say, warn, can, cell, empty, byId };

  pages["sign-in"] = function () {
    const form = byId("sign-in-form");
    const totpField = byId("totp-field");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = { email: byId("email").value, password: byId("password").value };
      if (!totpField.hidden && byId("totp").value) body.totp = byId("totp").value.trim();
      try {
        const answer = await api("POST", "/session", body);
        const next = new URLSearchParams(location.search).get("next");
        // Only a page of the console itself: the link must not lead anywhere else.
        const safe = next && next.startsWith(CONSOLE + "/") && !next.startsWith("//");
        location.assign(
          answer.must_change_password ? CONSOLE + "/password" : safe ? next : CONSOLE + "/"
        );
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        if (error.code === "totp_required") {
          totpField.hidden = false;
          say(error.message);
          byId("totp").focus();
        } else {
          warn(error.message);
          if (error.code === "wrong_credentials" && totpField.hidden) byId("password").focus();
        }
      }
    });
    byId("email").focus();
  };

  pages.home = async function () {
    byId("welcome").textContent = fill(T.signedInAs, { email: me.email });
  };

  pages.password = async function () {
    byId("must-change").hidden = !me.must_change_password;
    byId("password-form").addEventListener(
      "submit",
      guarded(async () => {
        const fresh = byId("new-password").value;
        if (fresh !== byId("repeat-password").value) {
          warn(T.passwordsDiffer);
          byId("repeat-password").focus();
          return;
        }
        await api("PUT", "/session/password", {
          current_password: byId("current-password").value,
          new_password: fresh,
        });
        byId("password-form").reset();
        byId("must-change").hidden = true;
        me.must_change_password = false;
        say(T.passwordChanged);
      })
    );
  };

  pages.accounts = async function () {
    const tbody = byId("accounts-table").tBodies[0];
    const select = byId("change-account");
    const changeForm = byId("change-form");
    const known = new Map();

    function option(account) {
      known.set(String(account.id), account);
      let o = select.querySelector(`option[value="${account.id}"]`);
      if (!o) {
        o = document.createElement("option");
        o.value = String(account.id);
        select.appendChild(o);
      }
      o.textContent = account.email + (account.active ? "" : " (" + T.inactive + ")");
    }

    function choose(account) {
      select.value = String(account.id);
      setRoles(changeForm, account.roles);
      byId("change-wards").value = (account.wards || []).join(", ");
    }

    function addRow(row, a) {
      option(a);
      cell(row, a.email);
      cell(row, a.name);
      cell(row, a.roles.join(", "));
      cell(row, a.wards && a.wards.length ? a.wards.join(", ") : T.wholeCity);
      cell(row, a.active ? T.yes : T.no);
      const actions = cell(row, "");
      actions.textContent = "";
      actions.appendChild(
        button(T.change, fill(T.changeOf, { name: a.email }), () => {
          choose(known.get(String(a.id)));
          select.focus();
        })
      );
      if (a.active) {
        actions.appendChild(
          button(T.disable, fill(T.disableOf, { name: a.email }), async () => {
            const changed = await api("DELETE", "/accounts/" + a.id);
            option(changed);
            say(fill(T.disabled, { name: changed.email }));
            await accounts.load(true);
          })
        );
      }
    }

    const accounts = pager("/accounts", tbody, byId("accounts-more"), 6, addRow);
    await accounts.load(true);
    select.addEventListener("change", () => choose(known.get(select.value)));
    if (select.value) choose(known.get(select.value));

    byId("create-form").addEventListener(
      "submit",
      guarded(async () => {
        const form = byId("create-form");
        const roles = checkedRoles(form);
        if (!roles.length) return warn(T.pickRole);
        const created = await api("POST", "/accounts", {
          email: byId("create-email").value,
          name: byId("create-name").value,
          roles,
          wards: list(byId("create-wards").value),
          languages: list(byId("create-languages").value),
        });
        form.reset();
        byId("created-email").textContent = created.account.email;
        byId("created-password").textContent = created.password;
        const totp = created.totp_uri;
        byId("created-totp").textContent = totp || "";
        byId("created-totp-term").hidden = !totp;
        byId("created-totp-detail").hidden = !totp;
        byId("created").hidden = false;
        byId("created").focus();
        await accounts.load(true);
      })
    );

    changeForm.addEventListener(
      "submit",
      guarded(async () => {
        if (!select.value) return warn(T.pickAccount);
        const roles = checkedRoles(changeForm);
        if (!roles.length) return warn(T.pickRole);
        await api("PATCH", "/accounts/" + select.value, {
          roles,
          wards: list(byId("change-wards").value),
        });
        say(T.saved);
        await accounts.load(true);
      })
    );
  };

  pages.tokens = async function () {
    const tbody = byId("tokens-table").tBodies[0];
    const emails = new Map();
    // The account list is the admin API's too: a token names its account by id.
    const accounts = await api("GET", "/accounts?limit=200");
    const select = byId("issue-account");
    accounts.items.forEach((a) => {
      emails.set(a.id, a.email);
      if (!a.active) return;
      const o = document.createElement("option");
      o.value = String(a.id);
      o.textContent = a.email;
      select.appendChild(o);
    });

    function addRow(row, t) {
      cell(row, t.prefix + "…");
      cell(row, emails.get(t.account_id) || "#" + t.account_id);
      cell(row, t.roles.join(", "));
      cell(row, when(t.expires_at));
      const expired = new Date(t.expires_at) < new Date();
      cell(row, t.revoked_at ? T.revoked : expired ? T.expired : T.valid);
      cell(row, when(t.last_used_at));
      const actions = cell(row, "");
      actions.textContent = "";
      if (!t.revoked_at && !expired) {
        actions.appendChild(
          button(T.revoke, fill(T.revokeOf, { name: t.prefix }), async () => {
            await api("DELETE", "/tokens/" + t.id);
            say(T.saved);
            await tokens.load(true);
          })
        );
      }
    }

    const tokens = pager("/tokens", tbody, byId("tokens-more"), 7, addRow);
    await tokens.load(true);

    byId("issue-form").addEventListener(
      "submit",
      guarded(async () => {
        const form = byId("issue-form");
        const roles = checkedRoles(form);
        if (!roles.length) return warn(T.pickRole);
        const issued = await api("POST", "/tokens", {
          account_id: Number(select.value),
          roles,
          days: Number(byId("issue-days").value),
        });
        byId("issued-token").textContent = issued.token;
        byId("issued").hidden = false;
        byId("issued").focus();
        await tokens.load(true);
      })
    );
  };

  pages.audit = async function () {
    const tbody = byId("audit-table").tBodies[0];
    const entries = pager("/audit", tbody, byId("audit-more"), 5, (row, e) => {
      cell(row, when(e.at));
      cell(row, e.actor);
      cell(row, e.action);
      cell(row, e.target);
      cell(row, e.address);
    });
    await entries.load(true);

    byId("audit-filter").addEventListener(
      "submit",
      guarded(async () => {
        const params = new URLSearchParams();
        const actor = byId("audit-actor").value.trim();
        const action = byId("audit-action").value.trim();
        const from = byId("audit-from").value;
        const to = byId("audit-to").value;
        if (actor) params.set("actor", actor);
        if (action) params.set("action", action);
        if (from) params.set("from", from + "T00:00:00Z");
        if (to) {
          // "To" includes its day: the API's bound is the next midnight, exclusive.
          const end = new Date(to + "T00:00:00Z");
          end.setUTCDate(end.getUTCDate() + 1);
          params.set("to", end.toISOString());
        }
        await entries.filter(params.toString());
      })
    );

    byId("verify").addEventListener(
      "click",
      guarded(async () => {
        const report = await api("POST", "/audit/verify");
        byId("verify-result").textContent = report.intact
          ? fill(T.chainIntact, { rows: report.rows })
          : fill(T.chainBroken, { seq: report.broken.seq, reason: report.broken.reason });
        await entries.load(true);
      })
    );
  };

  pages.requests = async function () {
    const tbody = byId("requests-table").tBodies[0];
    const mayChange = can("requests.update");
    const mayReveal = can("residents.view_personal");

    function addRow(row, r) {
      cell(row, r.reference);
      cell(row, r.service_code);
      cell(row, r.ward);
      cell(row, r.area_type);
      cell(row, r.status || r.filing);
      cell(row, r.status_notes);
      cell(row, when(r.created_at));
      const phone = cell(row, r.phones_masked.length ? r.phones_masked.join(", ") : T.noPhone);
      const actions = cell(row, "");
      actions.textContent = "";
      if (mayReveal && r.phones_masked.length) {
        actions.appendChild(
          button(T.reveal, fill(T.revealOf, { name: r.reference }), async (event) => {
            const answer = await api("POST", "/requests/" + r.reference + "/reveal-phone");
            phone.textContent = answer.phones.join(", ");
            event.target.remove();
            phone.setAttribute("tabindex", "-1");
            phone.focus();
          })
        );
      }
      if (mayChange && r.service_request_id) {
        actions.appendChild(
          button(T.change, fill(T.changeStatusOf, { name: r.reference }), () => {
            byId("change-reference").value = r.reference;
            if (r.status) byId("change-status").value = r.status;
            byId("change-notes").value = r.status_notes || "";
            byId("change-status").focus();
          })
        );
      }
    }

    const requests = pager("/requests", tbody, byId("requests-more"), 9, addRow);
    await requests.load(true);

    byId("requests-filter").addEventListener(
      "submit",
      guarded(async () => {
        const params = new URLSearchParams();
        const ward = byId("filter-ward").value.trim();
        const area = byId("filter-area-type").value.trim();
        const status = byId("filter-status").value;
        if (ward) params.set("ward", ward);
        if (area) params.set("area_type", area);
        if (status) params.set("status", status);
        await requests.filter(params.toString());
      })
    );

    byId("change-form").addEventListener(
      "submit",
      guarded(async () => {
        const notes = byId("change-notes").value.trim();
        await api("PATCH", "/requests/" + encodeURIComponent(byId("change-reference").value.trim()), {
          status: byId("change-status").value,
          status_notes: notes || null,
        });
        say(T.saved);
        await requests.load(true);
      })
    );
  };

  // -- every page but sign-in: who is this? -------------------------------------------------

  async function start() {
    try {
      me = await api("GET", "/session");
    } catch (error) {
      return failed(error);
    }
    csrf = me.csrf_token || null;
    if (me.must_change_password && PAGE !== "password") {
      location.assign(CONSOLE + "/password");
      return;
    }
    document.querySelectorAll("[data-permission]").forEach((element) => {
      element.hidden = !can(element.dataset.permission);
    });
    byId("who").textContent = fill(T.signedInAs, { email: me.email });
    const signOut = byId("sign-out");
    signOut.hidden = false;
    signOut.addEventListener(
      "click",
      guarded(async () => {
        await api("DELETE", "/session");
        location.assign(CONSOLE + "/sign-in");
      })
    );
    byId("content").hidden = false;
    if (document.readyState === "loading") {
      // Page scripts after this one have all run by DOMContentLoaded.
      await new Promise((ready) => document.addEventListener("DOMContentLoaded", ready));
    }
    try {
      await pages[PAGE]();
    } catch (error) {
      failed(error);
    }
  }

  if (PAGE === "sign-in") {
    pages["sign-in"]();
  } else {
    start();
  }
})();
