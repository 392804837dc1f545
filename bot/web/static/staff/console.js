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

  // The "you do not have access" page in place of the content, and in the title (what a screen
  // reader says first on arriving).
  function noAccess(why) {
    byId("content").hidden = true;
    byId("no-access-why").textContent = why;
    byId("no-access").hidden = false;
    document.title = byId("no-access-heading").textContent + " · " + document.title;
  }

  function toSignIn() {
    const next = encodeURIComponent(location.pathname + location.search);
    location.assign(CONSOLE + "/sign-in?next=" + next);
  }

  // What every failed call does: no session sends the person to sign in, a 403 is the
  // "you do not have access" page, anything else is said in the alert region. An action on a
  // page the person may use (``inPage``) says its 403 there too: "Ward 94 is outside your
  // wards" is about what they asked, not about the page.
  function failed(error, inPage) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 401) {
      toSignIn();
    } else if (error.status === 403 && error.code === "password_change_required") {
      location.assign(CONSOLE + "/password");
    } else if (error.status === 403 && error.code !== "csrf_failed" && !inPage) {
      noAccess(error.message);
    } else {
      warn(error.message);
    }
  }

  function guarded(handler, inPage) {
    return async (event) => {
      if (event) event.preventDefault();
      try {
        await handler(event);
      } catch (error) {
        failed(error, inPage);
      }
    };
  }

  // An action on the page: its refusal, 403 included, is said in the alert region.
  function acting(handler) {
    return guarded(async (event) => {
      byId("alert").textContent = "";
      await handler(event);
    }, true);
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

  function checked(form, name) {
    return Array.from(form.querySelectorAll(`input[name="${name}"]:checked`)).map((i) => i.value);
  }

  function setRoles(form, roles) {
    form.querySelectorAll("input[name=roles]").forEach((i) => {
      i.checked = roles.includes(i.value);
    });
  }

  // A row's first cell where it names the row (a department, a week): a header for it.
  function rowHeader(row, text) {
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = text;
    row.appendChild(th);
    return th;
  }

  // A row's last cell, for its buttons and links (cell() would write "–" in it).
  function actionsCell(row) {
    const td = cell(row, "");
    td.textContent = "";
    return td;
  }

  function link(text, label, href) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    if (label) a.setAttribute("aria-label", label);
    return a;
  }

  // An empty table says so, across all the columns its header has.
  function empty(tbody, text) {
    if (tbody.rows.length) return;
    const td = cell(tbody.insertRow(), text || T.nothing);
    td.colSpan = tbody.parentElement.tHead.rows[0].cells.length;
  }

  // A table whose rows are all replaced: ``addRow`` fills one row an item; none says so.
  function fillRows(tbody, items, addRow, none) {
    tbody.replaceChildren();
    for (const item of items) addRow(tbody.insertRow(), item);
    empty(tbody, none);
  }

  // A filter form's query string; a field left empty is left out.
  function queryOf(fields) {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(fields)) if (value) params.set(name, value);
    return params.toString();
  }

  function can(permission) {
    return !permission || (me && me.permissions.includes(permission));
  }

  // A paged list: the first page, then "more" asks for the page after next_cursor.
  function pager(path, tbody, more, addRow) {
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
      empty(tbody);
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
  window.citybotConsole = {
    pages, api, failed, guarded, acting, say, warn, can, cell, empty, byId, button, pager, when,
    fill, fromLocal, noAccess, rowHeader, actionsCell, link, fillRows, queryOf,
  };

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
      const actions = actionsCell(row);
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

    const accounts = pager("/accounts", tbody, byId("accounts-more"), addRow);
    await accounts.load(true);
    select.addEventListener("change", () => choose(known.get(select.value)));
    if (select.value) choose(known.get(select.value));

    byId("create-form").addEventListener(
      "submit",
      guarded(async () => {
        const form = byId("create-form");
        const roles = checked(form, "roles");
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
        const roles = checked(changeForm, "roles");
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
      const actions = actionsCell(row);
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

    const tokens = pager("/tokens", tbody, byId("tokens-more"), addRow);
    await tokens.load(true);

    byId("issue-form").addEventListener(
      "submit",
      guarded(async () => {
        const form = byId("issue-form");
        const roles = checked(form, "roles");
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
    const entries = pager("/audit", tbody, byId("audit-more"), (row, e) => {
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
        const from = byId("audit-from").value;
        const to = byId("audit-to").value;
        // "To" includes its day: the API's bound is the next midnight, exclusive.
        const end = to ? new Date(to + "T00:00:00Z") : null;
        if (end) end.setUTCDate(end.getUTCDate() + 1);
        await entries.filter(queryOf({
          actor: byId("audit-actor").value.trim(),
          action: byId("audit-action").value.trim(),
          from: from && from + "T00:00:00Z",
          to: end && end.toISOString(),
        }));
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
      const actions = actionsCell(row);
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

    const requests = pager("/requests", tbody, byId("requests-more"), addRow);
    await requests.load(true);

    byId("requests-filter").addEventListener(
      "submit",
      guarded(async () => {
        await requests.filter(queryOf({
          ward: byId("filter-ward").value.trim(),
          area_type: byId("filter-area-type").value.trim(),
          status: byId("filter-status").value,
        }));
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

  // -- broadcasts and incidents: shared pieces ------------------------------------------------

  // "2026-12-04T18:00" from a datetime-local input (the person's own clock) as UTC ISO.
  function fromLocal(value) {
    return value ? new Date(value).toISOString() : null;
  }

  function languageName(code) {
    return T["lang" + code.charAt(0).toUpperCase() + code.slice(1)] || code;
  }

  // The text_en ... text_xh fields of a form's textareas; empty ones are left out.
  function textsOf(form) {
    const texts = {};
    form.querySelectorAll("textarea[data-language]").forEach((area) => {
      const text = area.value.trim();
      if (text) texts["text_" + area.dataset.language] = text;
    });
    return texts;
  }

  function radio(form, name) {
    const chosen = form.querySelector(`input[name="${name}"]:checked`);
    return chosen ? chosen.value : null;
  }

  function define(dl, pairs) {
    dl.replaceChildren();
    pairs.forEach(([term, detail]) => {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = detail;
      dl.append(dt, dd);
    });
  }

  // The city's wards as the public dashboard draws them (GET /dashboard/wards.svg, one
  // <path data-ward="94"> per ward), fetched once and inlined so CSS can mark the target. It
  // carries no script or style of its own (the page's policy would refuse them anyway).
  let wardDrawing = null;
  function wardsSvg() {
    if (wardDrawing === null) {
      wardDrawing = fetch("/dashboard/wards.svg", { credentials: "same-origin" })
        .then((response) => (response.ok ? response.text() : null))
        .then((text) => {
          if (!text) return null;
          const svg = new DOMParser().parseFromString(text, "image/svg+xml").documentElement;
          if (!svg || svg.nodeName.toLowerCase() !== "svg") return null;
          svg.querySelectorAll("script, style, foreignObject").forEach((e) => e.remove());
          svg.querySelectorAll("*").forEach((element) => {
            Array.from(element.attributes).forEach((a) => {
              if (/^on/i.test(a.name) || a.name === "style") element.removeAttribute(a.name);
            });
          });
          return svg;
        })
        .catch(() => null);
    }
    return wardDrawing;
  }

  // The target wards on the map, and in words beside it (the drawing is hidden from screen
  // readers: the words say the same). Without the drawing, the words stay.
  async function showWards(figure, wards, everyone, words) {
    const drawing = figure.querySelector(".ward-map-drawing");
    const caption = figure.querySelector("figcaption");
    caption.textContent = everyone
      ? T.mapEveryone
      : fill(words || T.mapWards, { wards: wards.join(", ") || T.nothing });
    figure.hidden = false;
    drawing.replaceChildren();
    const svg = await wardsSvg();
    if (!svg) return;
    const copy = document.importNode(svg, true);
    copy.setAttribute("aria-hidden", "true");
    copy.setAttribute("focusable", "false");
    copy.querySelectorAll("[data-ward]").forEach((ward) => {
      ward.classList.toggle("target", everyone || wards.includes(ward.dataset.ward));
    });
    drawing.replaceChildren(copy);
  }

  // -- broadcasts --------------------------------------------------------------------------------

  // The report's columns: these always, the rarer states where they occur.
  const REPORT_MAIN = ["queued", "sent", "delivered", "failed", "unreachable"];
  const REPORT_ORDER = ["queued", "claimed", "sending", "sent", "delivered", "failed",
    "unreachable", "skipped", "unknown"];
  const UNSENT = ["draft", "awaiting_approval", "scheduled"];
  const LIVE = [...UNSENT, "sending"];
  // More segments than this and an SMS goes as several messages (notifier.broadcasts.SMS_BUDGET).
  const SMS_BUDGET = 3;

  pages.broadcasts = async function () {
    const tbody = byId("broadcasts-table").tBodies[0];
    const compose = byId("compose-form");
    const mayApprove = can("broadcasts.approve");
    let shown = null;

    function author(b) {
      if (b.author_id === me.account_id) return fill(T.you, { email: me.email });
      return b.author_email || fill(T.staffNumber, { id: b.author_id });
    }

    function target(b) {
      if (b.everyone) return T.everyone;
      const parts = [];
      if (b.places.length) parts.push(b.places.join(", "));
      if (b.point) {
        parts.push(fill(T.aroundPoint, {
          radius: b.point.radius_m, lat: b.point.lat, lon: b.point.lon,
        }));
      }
      parts.push(fill(T.wardsAre, { wards: b.wards.join(", ") }));
      return parts.join("; ");
    }

    function addRow(row, b) {
      cell(row, b.title);
      cell(row, b.state);
      cell(row, b.urgency);
      cell(row, target(b));
      cell(row, author(b));
      cell(row, b.state === "draft" || b.state === "awaiting_approval" ? "" : b.recipients);
      cell(row, when(b.created_at));
      const actions = actionsCell(row);
      actions.appendChild(
        button(T.open, fill(T.openOf, { name: b.title }), () => open(b.id, true))
      );
    }

    const listed = pager("/broadcasts", tbody, byId("broadcasts-more"), addRow);

    async function open(id, focus) {
      show(await api("GET", "/broadcasts/" + id));
      byId("preview").hidden = true;
      byId("report").hidden = true;
      if (focus) byId("broadcast").focus();
    }

    function show(b) {
      shown = b;
      byId("broadcast").hidden = false;
      byId("broadcast-heading").textContent = fill(T.broadcastNamed, { id: b.id, title: b.title });
      byId("broadcast-state").textContent = b.state;
      byId("broadcast-author").textContent = author(b);
      byId("broadcast-target").textContent = target(b);
      byId("broadcast-topic").textContent = b.topic;
      byId("broadcast-channels").textContent = b.channels.join(", ");
      byId("broadcast-urgency").textContent = b.urgency;
      byId("broadcast-send-at").textContent = b.send_at ? when(b.send_at) : T.asSoonAsMay;
      byId("broadcast-expires-at").textContent = b.expires_at ? when(b.expires_at) : T.never;
      byId("broadcast-approved").textContent = b.approved_by
        ? (b.approver_email || fill(T.staffNumber, { id: b.approved_by })) + " · " +
          when(b.approved_at)
        : "–";
      define(byId("broadcast-texts"), Object.keys(b.texts).map((code) => [
        languageName(code), b.texts[code],
      ]));
      showWards(byId("ward-map"), b.wards, b.everyone);

      const mine = b.author_id === me.account_id;
      const waiting = b.state === "awaiting_approval";
      byId("do-preview").hidden = !UNSENT.includes(b.state);
      byId("do-send").hidden = b.state !== "draft";
      byId("do-approve").hidden = !(waiting && mayApprove && !mine);
      byId("do-cancel").hidden = !LIVE.includes(b.state);
      byId("do-report").hidden = UNSENT.includes(b.state);
      byId("do-resend").hidden = !["sending", "sent"].includes(b.state);
      const note = byId("four-eyes");
      note.hidden = !waiting;
      // Four eyes: the API refuses an author's approval; the page says why before anyone tries.
      note.textContent = !waiting ? "" : mine
        ? T.fourEyesOwn
        : mayApprove ? T.fourEyesApprove : T.fourEyesWait;
    }

    function preview(p) {
      const warnings = byId("preview-warnings");
      warnings.replaceChildren();
      const warning = (text) => {
        const li = document.createElement("li");
        li.textContent = text;
        warnings.appendChild(li);
      };
      Object.entries(p.missing_translations).forEach(([code, n]) => {
        warning(fill(n === 1 ? T.missingTextOne : T.missingText, {
          n, language: languageName(code),
        }));
      });
      Object.entries(p.sms_segments).forEach(([code, n]) => {
        if (n > SMS_BUDGET) warning(fill(T.longSms, { language: languageName(code), segments: n }));
      });
      if (p.whatsapp_outside_window && !p.whatsapp_template) {
        warning(fill(T.outsideWindow, { n: p.whatsapp_outside_window }));
        warning(T.chooseTemplate);
      }
      if (p.unreachable) warning(fill(T.unreachableWarning, { n: p.unreachable }));
      if (p.needs_approval) warning(T.needsApproval);
      warnings.hidden = !warnings.children.length;

      byId("preview-recipients").textContent = String(p.recipients);
      byId("preview-cost").textContent = fill(T.smsCost, {
        cost: p.sms_cost.toFixed(2), currency: p.currency,
      });
      byId("preview-outside").textContent = String(p.whatsapp_outside_window);
      byId("preview-template").textContent = p.whatsapp_template || T.noTemplate;
      byId("preview-unreachable").textContent = String(p.unreachable);
      byId("preview-approval").textContent = p.needs_approval ? T.yes : T.no;

      const channels = Object.entries(p.by_channel);
      fillRows(byId("preview-channels").tBodies[0], channels, (row, [channel, n]) => {
        cell(row, channel);
        cell(row, n);
      });
      const languages = Object.entries(p.by_language);
      fillRows(byId("preview-languages").tBodies[0], languages, (row, [code, n]) => {
        cell(row, languageName(code));
        cell(row, n);
        cell(row, code in p.missing_translations ? languageName("en") : languageName(code));
        cell(row, p.sms_segments[code] || p.sms_segments.en);
      });
      byId("preview").hidden = false;
      byId("preview").focus();
    }

    function report(r) {
      const present = REPORT_ORDER.filter((s) => REPORT_MAIN.includes(s) || r.totals[s]);
      const totals = present.filter((s) => r.totals[s]).map((s) => s + " " + r.totals[s]);
      byId("report-summary").textContent = fill(T.reportSummary, {
        state: r.state, recipients: r.recipients, counts: totals.join(", ") || "–",
      });
      byId("report-csv").href = API + "/broadcasts/" + shown.id + "/report?format=csv";
      [["channel", r.by_channel], ["ward", r.by_ward], ["language", r.by_language]].forEach(
        ([dimension, table]) => {
          const element = byId("report-" + dimension);
          // The first column's header is the page's; the states' follow it.
          const head = element.tHead.rows[0];
          head.replaceChildren(head.cells[0]);
          present.forEach((text) => {
            const th = document.createElement("th");
            th.scope = "col";
            th.textContent = text;
            head.appendChild(th);
          });
          fillRows(element.tBodies[0], Object.entries(table), (row, [value, states]) => {
            rowHeader(row, dimension === "language" ? languageName(value) : value);
            present.forEach((s) => cell(row, states[s] || 0));
          });
        }
      );
      byId("report").hidden = false;
      byId("report").focus();
    }

    async function changed(b, text) {
      show(b);
      say(text);
      await listed.load(true);
    }

    byId("do-preview").addEventListener("click", acting(async () => {
      preview(await api("GET", "/broadcasts/" + shown.id + "/preview"));
    }));
    byId("do-send").addEventListener("click", acting(async () => {
      const b = await api("POST", "/broadcasts/" + shown.id + "/send");
      await changed(b, b.state === "awaiting_approval" ? T.sentForApproval : T.scheduled);
      byId("preview").hidden = true;
    }));
    byId("do-approve").addEventListener("click", acting(async () => {
      await changed(await api("POST", "/broadcasts/" + shown.id + "/approve"), T.approved);
    }));
    byId("do-cancel").addEventListener("click", acting(async () => {
      await changed(await api("POST", "/broadcasts/" + shown.id + "/cancel"), T.cancelled);
    }));
    byId("do-report").addEventListener("click", acting(async () => {
      report(await api("GET", "/broadcasts/" + shown.id + "/report"));
    }));
    byId("do-resend").addEventListener("click", acting(async () => {
      const answer = await api("POST", "/broadcasts/" + shown.id + "/resend-failed");
      await changed(answer.broadcast, fill(T.resent, { n: answer.queued }));
      report(await api("GET", "/broadcasts/" + shown.id + "/report"));
    }));

    // A sent or cancelled broadcast cannot change: copying it is how an official writes it
    // again (with a WhatsApp template the preview asked for, to other wards, ...).
    byId("do-copy").addEventListener("click", () => {
      const b = shown;
      compose.reset();
      byId("compose-title").value = b.title;
      compose.querySelectorAll("textarea[data-language]").forEach((area) => {
        area.value = b.texts[area.dataset.language] || "";
      });
      const kind = b.everyone ? "everyone" : b.point ? "point" : b.places.length ? "places" : "wards";
      compose.querySelector(`input[name="target"][value="${kind}"]`).checked = true;
      byId("compose-wards").value = b.wards.join(", ");
      byId("compose-places").value = b.places.join(", ");
      if (b.point) {
        byId("compose-latitude").value = b.point.lat;
        byId("compose-longitude").value = b.point.lon;
        byId("compose-radius").value = b.point.radius_m;
      }
      byId("compose-topic").value = b.topic;
      compose.querySelectorAll('input[name="channels"]').forEach((input) => {
        input.checked = b.channels.includes(input.value);
      });
      compose.querySelector(`input[name="urgency"][value="${b.urgency}"]`).checked = true;
      byId("compose-template").value = b.whatsapp_template || "";
      targetChosen();
      missing();
      say(fill(T.copied, { title: b.title }));
      byId("compose-title").focus();
    });

    byId("broadcasts-filter").addEventListener("submit", guarded(async () => {
      await listed.filter(queryOf({ state: byId("filter-state").value }));
    }));

    // The compose form: only the chosen target's fields show, and the languages left empty
    // are named before the preview counts who they are.
    function targetChosen() {
      const kind = radio(compose, "target");
      compose.querySelectorAll("[data-target]").forEach((element) => {
        element.hidden = element.dataset.target !== kind;
      });
      byId("compose-send-at").parentElement.hidden = radio(compose, "when") !== "later";
    }
    function missing() {
      const left = Array.from(compose.querySelectorAll("textarea[data-language]"))
        .filter((area) => area.dataset.language !== "en" && !area.value.trim())
        .map((area) => languageName(area.dataset.language));
      byId("compose-missing").textContent = left.length
        ? fill(T.missingLanguages, { languages: left.join(", ") })
        : "";
    }
    if (me.wards) {
      byId("compose-your-wards").textContent = fill(T.yourWards, { wards: me.wards.join(", ") });
    }
    compose.addEventListener("change", targetChosen);
    compose.addEventListener("input", missing);
    targetChosen();
    missing();

    compose.addEventListener("submit", acting(async () => {
      const body = { title: byId("compose-title").value, ...textsOf(compose) };
      const kind = radio(compose, "target");
      if (kind === "wards") body.wards = list(byId("compose-wards").value);
      if (kind === "places") body.places = list(byId("compose-places").value);
      if (kind === "point") {
        // An empty coordinate is left out, so the API names what is missing.
        const lat = byId("compose-latitude").value;
        const lon = byId("compose-longitude").value;
        if (lat !== "") body.latitude = Number(lat);
        if (lon !== "") body.longitude = Number(lon);
        body.radius_m = Number(byId("compose-radius").value || 500);
      }
      if (kind === "everyone") body.everyone = true;
      body.topic = byId("compose-topic").value;
      body.channels = checked(compose, "channels");
      if (!body.channels.length) return warn(T.pickChannel);
      body.urgency = radio(compose, "urgency");
      const template = byId("compose-template").value.trim();
      if (template) body.whatsapp_template = template;
      if (radio(compose, "when") === "later") {
        if (!byId("compose-send-at").value) return warn(T.pickTime);
        body.send_at = fromLocal(byId("compose-send-at").value);
      }
      const expires = fromLocal(byId("compose-expires-at").value);
      if (expires) body.expires_at = expires;
      const created = await api("POST", "/broadcasts", body);
      compose.reset();
      targetChosen();
      missing();
      await listed.load(true);
      show(created);
      say(fill(T.draftSaved, { title: created.title }));
      preview(await api("GET", "/broadcasts/" + created.id + "/preview"));
    }));

    await listed.load(true);
  };

  // -- known incidents ---------------------------------------------------------------------------

  pages.incidents = async function () {
    const tbody = byId("incidents-table").tBodies[0];
    const select = byId("change-incident");
    const declare = byId("declare-form");
    const change = byId("change-form");
    // Incidents listed so far, by id: the change form's map shows the chosen one's wards.
    const seen = new Map();
    const serviceNames = new Map();
    declare.querySelectorAll("input[name=services]").forEach((input) => {
      serviceNames.set(input.value, input.parentElement.textContent.trim());
    });

    function option(i) {
      let o = select.querySelector(`option[value="${i.id}"]`);
      if (i.status !== "open") {
        if (o) o.remove();
        return;
      }
      if (!o) {
        o = document.createElement("option");
        o.value = String(i.id);
        select.appendChild(o);
      }
      o.textContent = i.title + " (" + i.wards.join(", ") + ")";
    }

    function addRow(row, i) {
      seen.set(String(i.id), i);
      option(i);
      cell(row, i.title);
      cell(row, i.services.map((s) => serviceNames.get(s) || s).join(", "));
      cell(row, i.wards.join(", "));
      cell(row, i.status);
      cell(row, when(i.starts_at));
      cell(row, when(i.expected_end_at));
      cell(row, when(i.ended_at));
      cell(row, i.duplicates_avoided);
      const actions = actionsCell(row);
      if (i.status === "open") {
        actions.appendChild(
          button(T.change, fill(T.changeOf, { name: i.title }), () => {
            select.value = String(i.id);
            byId("change-status").value = i.status;
            chosen();
            select.focus();
          })
        );
      }
    }

    const incidents = pager("/incidents", tbody, byId("incidents-more"), addRow);

    // The incident being changed: its wards on the map. With none open, no form to fill.
    function chosen() {
      change.hidden = !select.options.length;
      byId("none-open").hidden = !change.hidden;
      const incident = seen.get(select.value);
      if (incident) showWards(byId("ward-map"), incident.wards, false, T.mapAffected);
      else byId("ward-map").hidden = true;
    }
    select.addEventListener("change", chosen);

    byId("incidents-filter").addEventListener("submit", guarded(async () => {
      await incidents.filter(queryOf({ status: byId("filter-status").value }));
    }));

    declare.addEventListener("submit", acting(async () => {
      const services = checked(declare, "services");
      if (!services.length) return warn(T.pickService);
      const body = {
        title: byId("declare-title").value,
        services,
        wards: list(byId("declare-wards").value),
        urgency: radio(declare, "declare-urgency"),
        ...textsOf(declare),
      };
      const starts = fromLocal(byId("declare-starts-at").value);
      if (starts) body.starts_at = starts;
      const end = fromLocal(byId("declare-expected-end").value);
      if (end) body.expected_end_at = end;
      const declared = await api("POST", "/incidents", body);
      declare.reset();
      say(fill(T.declared, { title: declared.title }));
      await incidents.load(true);
    }));

    change.addEventListener("submit", acting(async () => {
      if (!select.value) return warn(T.pickIncident);
      const body = { status: byId("change-status").value, ...textsOf(change) };
      const end = fromLocal(byId("change-expected-end").value);
      if (end) body.expected_end_at = end;
      const changed = await api("PATCH", "/incidents/" + select.value, body);
      change.reset();
      say(fill(changed.status === "open" ? T.incidentUpdated : T.incidentEnded, {
        title: changed.title, status: changed.status,
      }));
      await incidents.load(true);
      chosen();
    }));

    await incidents.load(true);
    chosen();
  };

  // -- support: the live queue, a conversation, the supervisor's overview ---------------------

  function supportTexts() {
    return byId("support-texts").dataset;
  }

  // Runs ``load`` now, or once more after the run in flight: a burst of events is one reload.
  function coalesced(load) {
    let running = null;
    let again = false;
    return async function run() {
      if (running) {
        again = true;
        return running;
      }
      running = (async () => {
        try {
          do {
            again = false;
            await load();
          } while (again);
        } finally {
          running = null;
        }
      })();
      return running;
    };
  }

  // The live feed (GET /support/events, server-sent events). The browser reconnects by itself
  // after a dropped stream, sending the id of the last line it had; a stream the server refused
  // (the session ended, say) is closed for good, so the session is checked (401 -> sign-in page)
  // and a new stream opened.
  function live(query, handlers) {
    const S = supportTexts();
    const note = byId("live");
    let source = null;
    const run = (handler, ...args) => Promise.resolve(handler(...args)).catch(failed);
    function open() {
      const q = query();
      source = new EventSource(API + "/support/events" + (q ? "?" + q : ""));
      source.addEventListener("ready", () => {
        note.dataset.state = "live";
        note.textContent = S.live;
        if (handlers.ready) run(handlers.ready);
      });
      source.addEventListener("queue", () => handlers.queue && run(handlers.queue));
      source.addEventListener("message", (event) => {
        if (handlers.message) run(handlers.message, JSON.parse(event.data));
      });
      source.addEventListener("error", () => {
        note.dataset.state = "lost";
        note.textContent = S.reconnecting;
        if (source.readyState !== EventSource.CLOSED) return;
        setTimeout(async () => {
          try {
            await api("GET", "/session");
            open();
          } catch (error) {
            failed(error);
          }
        }, 2000);
      });
    }
    open();
    window.addEventListener("pagehide", () => source && source.close());
  }

  pages.support = async function () {
    const S = supportTexts();
    const waiting = byId("queue-table").tBodies[0];
    const mine = byId("mine-table").tBodies[0];
    const count = byId("queue-count");
    let query = "";

    async function take(t) {
      try {
        await api("POST", "/support/tickets/" + t.id + "/claim");
      } catch (error) {
        if (!(error instanceof ApiError) || error.status !== 409) throw error;
        // The API lets exactly one agent win; the others are told who was quicker, plainly.
        warn(error.message.includes("taken") ? fill(S.lostClaim, { id: t.id }) : error.message);
        await load();
        return;
      }
      location.assign(CONSOLE + "/support/" + t.id + "?taken=1");
    }

    const load = coalesced(async () => {
      const q = new URLSearchParams(query);
      q.set("limit", "200");
      const queue = await api("GET", "/support/queue?" + q.toString());
      fillRows(waiting, queue.items, (row, t) => {
        cell(row, when(t.created_at));
        cell(row, t.priority);
        cell(row, t.language);
        cell(row, t.channel);
        cell(row, t.topic);
        cell(row, t.reason);
        cell(row, t.ward);
        cell(row, t.address_masked);
        const actions = actionsCell(row);
        if (can("conversations.take_over")) {
          actions.appendChild(button(S.take, fill(S.takeOf, { id: t.id }), () => take(t)));
        }
        actions.appendChild(
          link(S.open, fill(S.openOf, { id: t.id }), CONSOLE + "/support/" + t.id)
        );
      });
      const text = fill(S.waitingCount, { count: queue.items.length });
      if (count.textContent !== text) count.textContent = text;
      const open = await api("GET", "/support/queue?state=open&limit=200");
      const held = open.items.filter((t) => t.state === "held" && t.agent_id === me.account_id);
      fillRows(mine, held, (row, t) => {
        cell(row, when(t.claimed_at));
        cell(row, t.language);
        cell(row, t.channel);
        cell(row, t.topic);
        cell(row, t.address_masked);
        actionsCell(row).appendChild(
          link(S.open, fill(S.openOf, { id: t.id }), CONSOLE + "/support/" + t.id)
        );
      });
    });

    byId("queue-filter").addEventListener(
      "submit",
      guarded(async () => {
        query = queryOf({
          language: byId("filter-language").value,
          channel: byId("filter-channel").value,
          topic: byId("filter-topic").value.trim(),
        });
        await load();
      })
    );

    // Start a conversation the resident never asked about: find them by a report's reference,
    // then take one of their conversations over (the API opens it held by this agent).
    const found = byId("start-table").tBodies[0];
    async function takeOver(c) {
      const ticket = await api("POST", "/support/conversations/" + c.conversation_id + "/takeover");
      location.assign(CONSOLE + "/support/" + ticket.id + "?taken=1");
    }
    byId("start-find").addEventListener(
      "submit",
      acting(async () => {
        const reference = byId("start-reference").value.trim();
        const answer = await api(
          "GET",
          "/support/conversations?reference=" + encodeURIComponent(reference)
        );
        // None found says why: the resident has nothing the city may write to.
        fillRows(found, answer.items, (row, c) => {
          cell(row, c.channel);
          cell(row, c.address_masked);
          cell(row, c.language);
          cell(row, when(c.last_inbound_at));
          const actions = actionsCell(row);
          if (c.open_ticket_id) {
            const id = c.open_ticket_id;
            actions.appendChild(
              link(S.open, fill(S.openOf, { id }), CONSOLE + "/support/" + id)
            );
          } else if (c.opted_out) {
            actions.textContent = S.optedOut;
          } else {
            const label = fill(S.takeOverOf, { channel: c.channel });
            actions.appendChild(button(S.takeOver, label, acting(() => takeOver(c))));
          }
        }, S.foundNone);
      })
    );
    await load();
    live(() => "", { ready: load, queue: load });
  };

  pages["support-conversation"] = async function () {
    const S = supportTexts();
    const id = Number(location.pathname.split("/").pop());
    const transcript = byId("transcript");
    const seen = new Set();
    let lastLine = 0;
    let ticket = null;
    let channel = null;

    const heading = document.querySelector("h1");
    heading.textContent = fill(S.conversationTitle, { id });
    document.title = heading.textContent + " · " + document.title.split(" · ").pop();

    function who(m) {
      if (m.direction === "resident") return S.resident;
      if (m.direction === "note") return S.note;
      if (m.direction === "system") return S.system;
      return m.author_id === me.account_id ? S.agentYou : S.agent;
    }

    function addLine(list, m, label) {
      const li = document.createElement("li");
      li.className = "line line-" + m.direction;
      const meta = document.createElement("p");
      meta.className = "meta";
      meta.textContent = label + " · " + when(m.at);
      const text = document.createElement("p");
      text.className = "text";
      text.textContent = m.text === null ? "–" : m.text;
      li.append(meta, text);
      list.appendChild(li);
    }

    function addTranscriptLine(m) {
      if (seen.has(m.id)) return;
      seen.add(m.id);
      lastLine = Math.max(lastLine, m.id);
      addLine(transcript, m, who(m));
    }

    function stateText(t) {
      if (t.state === "waiting") return S.waiting;
      if (t.state === "held") {
        return t.agent_id === me.account_id ? S.heldByYou : fill(S.heldBy, { id: t.agent_id });
      }
      return fill(S.closed, { outcome: t.outcome || "" });
    }

    function render() {
      const t = ticket;
      byId("about-state").textContent = stateText(t);
      byId("about-address").textContent = t.address_masked || "–";
      byId("about-language").textContent = t.language;
      byId("about-channel").textContent = t.channel;
      byId("about-reason").textContent = t.reason;
      byId("about-topic").textContent = t.topic || "–";
      byId("about-ward").textContent = t.ward || "–";
      byId("about-created").textContent = when(t.created_at);
      const open = t.state === "waiting" || t.state === "held";
      const mine = t.state === "held" && t.agent_id === me.account_id;
      byId("claim").hidden = !(t.state === "waiting" && can("conversations.take_over"));
      byId("reply-section").hidden = !mine;
      byId("handback-section").hidden = !(open && (mine || can("conversations.manage_queue")));
      byId("transfer-section").hidden = !(
        open &&
        can("conversations.take_over") &&
        (mine || can("conversations.manage_queue"))
      );
      byId("assign-section").hidden = !(open && can("conversations.manage_queue"));
    }

    function describeChannel(c) {
      if (!c.configured) return fill(S.channelOff, { channel: c.name });
      if (c.sms_segments) return fill(S.channelSms, { segments: c.sms_segments });
      return fill(S.channelLength, { channel: c.name, max: c.max_length });
    }

    // WhatsApp after 24 hours of the resident's silence: free text is off, and the approved
    // templates (the ones a broadcast may choose) are offered to reopen the conversation.
    function showWindow(c) {
      const note = byId("window-note");
      if (c.window_open === null) return;
      note.hidden = false;
      const closed = !c.window_open;
      byId("reply-text").disabled = closed;
      byId("reply-send").disabled = closed;
      byId("canned").disabled = closed;
      byId("template-form").hidden = !closed || !c.templates.length;
      if (!closed) {
        note.textContent = fill(S.windowOpen, { until: when(c.window_closes_at) });
        return;
      }
      note.textContent =
        S.windowClosed + " " + (c.templates.length ? S.windowDisabled : S.noTemplates);
      const select = byId("template-name");
      select.replaceChildren();
      c.templates.forEach((name) => {
        const o = document.createElement("option");
        o.value = name;
        o.textContent = name;
        select.appendChild(o);
      });
    }

    // What the draft costs, counted by the server as the SMS channel will send it.
    const box = byId("reply-text");
    const counter = byId("reply-count");
    let countTimer = null;
    async function countDraft() {
      const text = box.value;
      // An SMS conversation is counted in segments even where the channel is not set up here.
      if (!channel || ticket.channel !== "sms") {
        counter.textContent = fill(S.charCount, {
          count: text.length,
          max: channel && channel.max_length ? channel.max_length : "–",
        });
        return;
      }
      if (!text.trim()) {
        counter.textContent = S.smsEmpty;
        return;
      }
      const c = await api("POST", "/support/sms-count", { text });
      if (box.value !== text) return; // typed on meanwhile: the next count follows
      counter.textContent =
        fill(S.smsCount, c) + (c.encoding === "UCS-2" ? " " + S.smsUcs2 : "");
    }
    box.addEventListener("input", () => {
      clearTimeout(countTimer);
      countTimer = setTimeout(() => countDraft().catch(failed), 200);
    });

    // Every control works before the data arrives: a click on a control just shown is never lost.
    const canned = byId("canned");
    const cannedTexts = new Map();
    byId("canned-pick").addEventListener(
      "submit",
      guarded(async () => {
        const text = cannedTexts.get(canned.value);
        if (!text) return;
        box.setRangeText(text, box.selectionStart, box.selectionEnd, "end");
        box.focus();
        box.dispatchEvent(new Event("input"));
      })
    );

    byId("claim").addEventListener(
      "click",
      guarded(async () => {
        try {
          ticket = await api("POST", "/support/tickets/" + id + "/claim");
        } catch (error) {
          if (!(error instanceof ApiError) || error.status !== 409) throw error;
          warn(error.message.includes("taken") ? fill(S.lostClaim, { id }) : error.message);
          return;
        }
        render();
        say(S.taken);
        box.focus();
      })
    );
    byId("reply-form").addEventListener(
      "submit",
      guarded(async () => {
        ticket = await api("POST", "/support/tickets/" + id + "/messages", { text: box.value });
        box.value = "";
        await countDraft();
        render();
        say(S.sent);
      })
    );
    byId("note-form").addEventListener(
      "submit",
      guarded(async () => {
        const note = byId("note-text");
        ticket = await api("POST", "/support/tickets/" + id + "/notes", { text: note.value });
        note.value = "";
        render();
        say(S.noted);
      })
    );
    byId("handback-form").addEventListener(
      "submit",
      guarded(async () => {
        const outcome = byId("outcome").value;
        ticket = await api("POST", "/support/tickets/" + id + "/handback", { outcome });
        render();
        say(fill(S.handedBack, { outcome }));
      })
    );
    byId("template-form").addEventListener(
      "submit",
      acting(async () => {
        const template = byId("template-name").value;
        ticket = await api("POST", "/support/tickets/" + id + "/template", { template });
        render();
        say(S.templateSent);
      })
    );
    byId("transfer-form").addEventListener(
      "submit",
      acting(async () => {
        const team = byId("transfer-team").value;
        const agent = byId("transfer-agent").value;
        const note = byId("transfer-note").value.trim();
        if (!team && !agent) {
          warn(S.transferNobody);
          return;
        }
        const request = {};
        if (team) request.team = team;
        if (agent) request.account_id = Number(agent);
        if (note) request.note = note;
        ticket = await api("POST", "/support/tickets/" + id + "/transfer", request);
        byId("transfer-note").value = "";
        render();
        say(S.transferred);
      })
    );
    byId("assign-form").addEventListener(
      "submit",
      guarded(async () => {
        const value = byId("assign-agent").value;
        ticket = await api("POST", "/support/tickets/" + id + "/assign", {
          account_id: value ? Number(value) : null,
        });
        render();
        say(S.assigned);
      })
    );

    const shown = await api("GET", "/support/tickets/" + id);
    ticket = shown.ticket;
    shown.messages.forEach(addTranscriptLine);
    render();
    if (new URLSearchParams(location.search).get("taken")) say(S.taken);
    fillRows(byId("reports-table").tBodies[0], shown.reports, (row, r) => {
      cell(row, r.reference);
      cell(row, r.service_code);
      cell(row, r.status);
      cell(row, when(r.created_at));
    });

    const context = await api("GET", "/support/tickets/" + id + "/context");
    channel = context.channel;
    byId("channel-note").textContent = describeChannel(channel);
    showWindow(channel);
    await countDraft();
    const history = byId("history");
    context.history.forEach((m) =>
      addLine(history, m, m.channel + " · " + (m.direction === "in" ? S.resident : "citybot"))
    );
    if (!context.history.length) addLine(history, { text: T.nothing, at: "" }, "");
    const answers = byId("form-answers");
    if (context.form) {
      byId("form-title").textContent = context.form.answers.length
        ? context.form.title
        : fill(S.noAnswers, { form: context.form.title });
      context.form.answers.forEach((a) => {
        const dt = document.createElement("dt");
        dt.textContent = a.label;
        const dd = document.createElement("dd");
        dd.textContent = a.answer;
        answers.append(dt, dd);
      });
    } else {
      byId("form-title").textContent = S.noForm;
    }

    const offered = await api("GET", "/support/canned-responses?offer=" + ticket.language);
    const none = document.createElement("option");
    none.value = "";
    none.textContent = S.chooseCanned;
    canned.appendChild(none);
    offered.items.forEach((c) => {
      cannedTexts.set(String(c.id), c.text);
      const o = document.createElement("option");
      o.value = String(c.id);
      o.textContent = fill(S.cannedIn, { name: c.name, language: c.language });
      canned.appendChild(o);
    });
    if (can("conversations.manage_queue")) {
      const agents = await api("GET", "/support/agents");
      const select = byId("assign-agent");
      const back = document.createElement("option");
      back.value = "";
      back.textContent = S.queueBack;
      select.appendChild(back);
      // Supervisors may also transfer to an agent (agents pass it to a team).
      const transferTo = byId("transfer-agent");
      const nobody = document.createElement("option");
      nobody.value = "";
      nobody.textContent = S.nobody;
      transferTo.appendChild(nobody);
      agents.items.forEach((a) => {
        const o = document.createElement("option");
        o.value = String(a.account_id);
        o.textContent = (a.name || a.email) + " (" + a.held + ")";
        select.appendChild(o);
        transferTo.appendChild(o.cloneNode(true));
      });
      byId("transfer-agent-field").hidden = false;
    }

    live(() => "ticket=" + id + "&since=" + lastLine, {
      async message(event) {
        addTranscriptLine(event.line);
        Object.assign(ticket, event.ticket);
        render();
        // The resident wrote: WhatsApp's window is open again, and free text with it.
        if (event.line.direction === "resident" && channel && channel.window_open === false) {
          channel = (await api("GET", "/support/tickets/" + id + "/context")).channel;
          showWindow(channel);
        }
      },
    });
  };

  pages["support-overview"] = async function () {
    const S = supportTexts();
    const tiles = byId("queues");
    const agentsBody = byId("agents-table").tBodies[0];
    const openBody = byId("open-table").tBodies[0];

    // Seconds as "42 s", "7 min" or "1.5 h"; "-" where there is no figure yet.
    function duration(seconds) {
      if (seconds === null || seconds === undefined) return "-";
      if (seconds < 90) return Math.round(seconds) + " s";
      if (seconds < 5400) return Math.round(seconds / 60) + " min";
      return (seconds / 3600).toFixed(1) + " h";
    }

    function showFigures(stats) {
      byId("figures-now").textContent = fill(S.figuresNow, {
        waiting: stats.waiting,
        oldest: duration(stats.oldest_wait_seconds),
        held: stats.held,
      });
      document.querySelectorAll("#figures-table tr[data-figure]").forEach((row) => {
        const figure = stats[row.dataset.figure];
        const cells = row.querySelectorAll("td");
        cells[0].textContent = figure.count;
        cells[1].textContent = duration(figure.p50_seconds);
        cells[2].textContent = duration(figure.p90_seconds);
      });
      const outcomes = Object.entries(stats.outcomes)
        .map(([outcome, count]) => outcome + " " + count)
        .join(", ");
      byId("figures-outcomes").textContent = fill(S.figuresOutcomes, {
        outcomes: outcomes || S.figuresNone,
      });
    }

    const load = coalesced(async () => {
      const [open, agents, stats] = await Promise.all([
        api("GET", "/support/queue?state=open&limit=200"),
        api("GET", "/support/agents"),
        api("GET", "/support/stats"),
      ]);
      showFigures(stats);
      const names = new Map(agents.items.map((a) => [a.account_id, a.name || a.email]));
      // One queue per language: how many wait in it and how many are being answered.
      const queues = new Map();
      open.items.forEach((t) => {
        const q = queues.get(t.language) || { waiting: 0, held: 0 };
        q[t.state === "held" ? "held" : "waiting"] += 1;
        queues.set(t.language, q);
      });
      tiles.replaceChildren();
      Array.from(queues.keys())
        .sort()
        .forEach((language) => {
          const q = queues.get(language);
          const li = document.createElement("li");
          li.textContent = fill(S.queueTile, { language, waiting: q.waiting, held: q.held });
          tiles.appendChild(li);
        });
      fillRows(agentsBody, agents.items, (row, a) => {
        cell(row, a.name ? a.name + " (" + a.email + ")" : a.email);
        cell(row, a.languages.join(", "));
        cell(row, a.held);
        cell(row, when(a.last_claim));
      });
      fillRows(openBody, open.items, (row, t) => {
        cell(row, when(t.created_at));
        cell(row, t.priority);
        cell(row, t.language);
        cell(row, t.channel);
        cell(row, t.topic);
        cell(row, t.state);
        cell(row, t.agent_id ? names.get(t.agent_id) || "#" + t.agent_id : S.nobody);
        const actions = actionsCell(row);
        actions.appendChild(
          link(S.open, fill(S.openOf, { id: t.id }), CONSOLE + "/support/" + t.id)
        );
        // Reassign in place: to another agent, or back to the queue.
        const to = document.createElement("select");
        to.setAttribute("aria-label", fill(S.reassignOf, { id: t.id }));
        const back = document.createElement("option");
        back.value = "";
        back.textContent = S.queueBack;
        to.appendChild(back);
        agents.items.forEach((a) => {
          const o = document.createElement("option");
          o.value = String(a.account_id);
          o.textContent = (a.name || a.email) + " (" + a.held + ")";
          o.selected = a.account_id === t.agent_id;
          to.appendChild(o);
        });
        actions.appendChild(to);
        actions.appendChild(
          button(
            S.reassign,
            fill(S.reassignButtonOf, { id: t.id }),
            acting(async () => {
              await api("POST", "/support/tickets/" + t.id + "/assign", {
                account_id: to.value ? Number(to.value) : null,
              });
              say(S.assigned);
              await load();
            })
          )
        );
      });
    });

    const cannedBody = byId("canned-table").tBodies[0];
    async function loadCanned() {
      const all = await api("GET", "/support/canned-responses");
      fillRows(cannedBody, all.items, (row, c) => {
        cell(row, c.name);
        cell(row, c.language);
        cell(row, c.text);
        const actions = actionsCell(row);
        const named = { name: c.name, language: c.language };
        actions.appendChild(
          button(T.change, fill(S.changeOf, named), () => {
            // A text is changed in place; its name and language stay what they are.
            byId("canned-id").value = String(c.id);
            byId("canned-name").value = c.name;
            byId("canned-name").readOnly = true;
            byId("canned-language").value = c.language;
            byId("canned-language").disabled = true;
            byId("canned-text").value = c.text;
            byId("canned-text").focus();
          })
        );
        actions.appendChild(
          button(S.delete, fill(S.deleteOf, named), async () => {
            await api("DELETE", "/support/canned-responses/" + c.id);
            say(T.saved);
            await loadCanned();
          })
        );
      });
    }
    byId("canned-form").addEventListener(
      "submit",
      guarded(async () => {
        const id = byId("canned-id").value;
        const text = byId("canned-text").value;
        if (id) {
          await api("PATCH", "/support/canned-responses/" + id, { text });
        } else {
          await api("POST", "/support/canned-responses", {
            name: byId("canned-name").value.trim(),
            language: byId("canned-language").value,
            text,
          });
        }
        byId("canned-form").reset();
        byId("canned-id").value = "";
        byId("canned-name").readOnly = false;
        byId("canned-language").disabled = false;
        say(T.saved);
        await loadCanned();
      })
    );

    await load();
    await loadCanned();
    live(() => "", { ready: load, queue: load });
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
