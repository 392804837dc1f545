// The city's web chat page: posts what the resident says to /webchat/messages and shows the
// replies. No framework and no build step; the server does all the understanding.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const log = $("log");
  const form = $("composer");
  const input = $("text");
  const sendButton = $("send");
  const locationButton = $("location");
  const languageSelect = $("language");
  const statusLine = $("status");

  let texts = {};          // UI texts per locale, from /webchat/texts
  let locale = "en";
  let busy = false;
  let lastOptions = null;  // the buttons under the latest question, disabled once answered
  let transcript = [];     // what is on screen, kept in localStorage so a reload keeps it
  let replaying = false;
  const STORE = "citybot.webchat";
  const KEEP = 60;
  // Messages the bot starts (report filed, status updates) cannot ride on a reply: the page asks
  // for them every few seconds, from the last message id it saw (kept across reloads).
  const PUSHED = "citybot.webchat.pushed";
  const POLL_MS = 5000;
  let lastPushed = 0;
  let polling = false;

  function loadTranscript() {
    try {
      const saved = JSON.parse(localStorage.getItem(STORE) || "{}");
      return { locale: saved.locale, items: Array.isArray(saved.items) ? saved.items : [] };
    } catch (error) {
      return { locale: null, items: [] };
    }
  }

  function remember(item) {
    if (replaying) return;
    transcript.push(item);
    transcript = transcript.slice(-KEEP);
    try {
      localStorage.setItem(STORE, JSON.stringify({ locale: locale, items: transcript }));
    } catch (error) {
      // Private browsing or a full store: the chat still works, it just forgets on reload.
    }
  }

  function t(key, values) {
    const table = texts[locale] || texts.en || {};
    let text = table[key] || (texts.en && texts.en[key]) || key;
    for (const [name, value] of Object.entries(values || {})) {
      text = text.split("{" + name + "}").join(String(value));
    }
    return text;
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  // --- showing things ------------------------------------------------------------------------

  function scrollDown() {
    log.scrollTop = log.scrollHeight;
  }

  // Bubbles tell who spoke by side and colour only; a screen reader hears it from this label
  // ("City: Where is the pothole?"), in the page's language at the time it was said.
  function speaker(who) {
    const label = document.createElement("span");
    label.className = "visually-hidden";
    label.textContent = t(who === "me" ? "you" : "city") + ": ";
    return label;
  }

  function bubble(text, who, extraClass) {
    const div = document.createElement("div");
    div.className = "bubble " + who + (extraClass ? " " + extraClass : "");
    // The bot speaks the page's language; what the resident typed may be in any.
    if (who === "bot") div.lang = locale;
    div.append(speaker(who), ...(who === "bot" ? ownLinks(text) : [text]));
    log.appendChild(div);
    scrollDown();
    return div;
  }

  function ownLinks(text) {
    // A link to this site in the bot's words (the resident's data export) can be followed;
    // any other address stays text, so a message can never turn into a link elsewhere.
    return text.split(/(https?:\/\/\S+)/).map((part) => {
      if (!part.startsWith(location.origin + "/")) return part;
      const link = document.createElement("a");
      link.href = part;
      link.textContent = part;
      return link;
    });
  }

  function retireButtons() {
    // Only the latest question's buttons answer it; older ones are kept for reading only.
    if (lastOptions) {
      for (const button of lastOptions.querySelectorAll("button")) button.disabled = true;
      lastOptions = null;
    }
  }

  function optionButtons(options) {
    retireButtons();
    const row = document.createElement("div");
    row.className = "options";
    row.setAttribute("role", "group");
    for (const option of options) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = option.label;
      button.dataset.optionId = option.id;
      // "menu" and "skip" are words the bot understands anywhere; the rest are option ids.
      const said = option.say ? { text: option.say } : { option_id: option.id };
      button.addEventListener("click", () => send(said, option.label));
      row.appendChild(button);
    }
    log.appendChild(row);
    lastOptions = row;
    scrollDown();
  }

  function showAsk(message) {
    const div = bubble("", "bot");
    if (message.progress) {
      const step = document.createElement("span");
      step.className = "step";
      step.textContent = t("question_of", message.progress);
      div.appendChild(step);
    }
    div.appendChild(document.createTextNode(message.text));
    if (message.hint) {
      const hint = document.createElement("span");
      hint.className = "hint";
      hint.textContent = message.hint;
      div.appendChild(hint);
    }
    const options = (message.options || []).slice();
    if (message.optional) options.push({ id: "skip", say: "skip", label: t("skip") });
    if (options.length) optionButtons(options);
    else retireButtons();
    setProgress(message.progress);
    locationButton.hidden = message.input !== "location";
  }

  function showReview(message) {
    retireButtons();
    const card = document.createElement("section");
    card.className = "review";
    card.lang = locale;
    card.setAttribute("aria-label", message.title);
    card.appendChild(speaker("bot"));
    const title = document.createElement("h2");
    title.textContent = message.title;
    card.appendChild(title);
    const list = document.createElement("dl");
    const changes = new Map((message.options || []).map((o) => [o.id, o]));
    for (const item of message.items) {
      const row = document.createElement("div");
      row.className = "row";
      const dt = document.createElement("dt");
      dt.textContent = item.number + ". " + item.label;
      const dd = document.createElement("dd");
      dd.textContent = item.value;
      row.append(dt, dd);
      const change = changes.get("change:" + item.number);
      if (change) {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = t("change");
        button.setAttribute("aria-label", change.label + ": " + item.label);
        button.addEventListener("click", () => send({ option_id: change.id }, change.label));
        // A <dl> row may hold only dt and dd: the button goes in a dd of its own.
        const action = document.createElement("dd");
        action.className = "action";
        action.appendChild(button);
        row.appendChild(action);
        changes.delete(change.id);
      }
      list.appendChild(row);
    }
    card.appendChild(list);
    const prompt = document.createElement("p");
    prompt.textContent = message.text;
    card.appendChild(prompt);
    const actions = document.createElement("div");
    actions.className = "review-actions";
    for (const option of changes.values()) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = option.label;
      if (option.id === "send") button.className = "primary";
      button.addEventListener("click", () => send({ option_id: option.id }, option.label));
      actions.appendChild(button);
    }
    card.appendChild(actions);
    log.appendChild(card);
    lastOptions = card;
    setProgress(null);
    locationButton.hidden = true;
    scrollDown();
  }

  function showReply(payload) {
    remember({ reply: payload });
    if (payload.locale) setLocale(payload.locale);
    locationButton.hidden = true;
    for (const message of payload.messages || []) {
      if (message.type === "ask") showAsk(message);
      else if (message.type === "review") showReview(message);
      else if (message.type === "error") bubble(message.text, "bot", "error");
      else if (message.type === "notice") bubble(message.text, "bot", "notice");
      else bubble(message.text || "", "bot");
    }
    if (payload.reference) {
      const done = document.createElement("div");
      done.className = "reference";
      done.lang = locale;
      done.append(speaker("bot"), t("reference", { reference: payload.reference }));
      log.appendChild(done);
      setProgress(null);
      scrollDown();
    }
  }

  function setProgress(progress) {
    const box = $("progress");
    if (!progress) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    $("progress-text").textContent = t("question_of", progress);
    $("progress-bar").style.width = Math.round((100 * progress.position) / progress.total) + "%";
  }

  function setLocale(next) {
    if (!next) return;
    locale = next;
    document.documentElement.lang = next;
    languageSelect.value = next;
    document.title = t("title");
    $("title").textContent = t("title");
    $("subtitle").textContent = t("subtitle");
    $("language-label").textContent = t("language");
    log.setAttribute("aria-label", t("conversation"));
    $("text-label").textContent = t("placeholder");
    input.placeholder = t("placeholder");
    sendButton.textContent = t("send");
    $("location-text").textContent = t("location");
  }

  function setBusy(value) {
    busy = value;
    sendButton.disabled = value;
    locationButton.disabled = value;
  }

  function setStatus(text, isError) {
    statusLine.textContent = text || "";
    statusLine.classList.toggle("error", Boolean(isError));
  }

  // --- talking to the server -----------------------------------------------------------------

  async function post(body) {
    // The same client_message_id on every retry: the server processes the message once.
    const delays = [0, 500, 1500, 4000];
    let lastError = null;
    for (const delay of delays) {
      if (delay) {
        setStatus(t("retrying"));
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
      try {
        const response = await fetch("/webchat/messages", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          credentials: "same-origin",
          body: JSON.stringify(body),
        });
        if (response.status === 503 || response.status === 502) {
          lastError = new Error("unavailable");
          continue;
        }
        const payload = await response.json();
        if (!response.ok) throw new Error(payload.error || response.statusText);
        return payload;
      } catch (error) {
        lastError = error;
        if (error instanceof TypeError) continue; // network: retry
        throw error;
      }
    }
    throw lastError || new Error("unavailable");
  }

  async function send(answer, shownAs) {
    if (busy) return;
    retireButtons();
    if (shownAs) {
      bubble(shownAs, "me");
      remember({ me: shownAs });
    }
    setBusy(true);
    setStatus("");
    try {
      const payload = await post({ client_message_id: newId(), locale: locale, ...answer });
      setStatus("");
      showReply(payload);
    } catch (error) {
      setStatus(t("offline"), true);
    } finally {
      setBusy(false);
      input.focus();
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || busy) return;
    input.value = "";
    send({ text: text }, text);
  });

  locationButton.addEventListener("click", () => {
    if (!navigator.geolocation) {
      setStatus(t("location_unavailable"), true);
      return;
    }
    if (busy) return;
    setStatus(t("locating"));
    setBusy(true); // one tap, one location: the browser may take a few seconds to answer
    navigator.geolocation.getCurrentPosition(
      (position) => {
        const { latitude, longitude } = position.coords;
        setBusy(false);
        send({ location: { lat: latitude, lon: longitude } }, t("my_location"));
      },
      () => {
        setBusy(false);
        setStatus(t("location_unavailable"), true);
      },
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 },
    );
  });

  languageSelect.addEventListener("change", () => {
    const chosen = languageSelect.value;
    setLocale(chosen);
    // The same words a resident could type: "language af".
    send({ text: "language " + chosen }, languageSelect.selectedOptions[0].textContent);
  });

  function loadLastPushed() {
    try {
      return Number(localStorage.getItem(PUSHED)) || 0;
    } catch (error) {
      return 0;
    }
  }

  async function poll() {
    if (polling || document.hidden) return;
    polling = true;
    try {
      const response = await fetch("/webchat/messages?after=" + lastPushed, {
        credentials: "same-origin",
        cache: "no-store",
      });
      if (!response.ok) return;
      const payload = await response.json();
      for (const message of payload.messages || []) {
        bubble(message.text, "bot", "notice");
        remember({ pushed: message.text });
      }
      if (payload.last_id > lastPushed) {
        lastPushed = payload.last_id;
        try {
          localStorage.setItem(PUSHED, String(lastPushed));
        } catch (error) {
          // As with the transcript: without storage the page only forgets across reloads.
        }
      }
    } catch (error) {
      // Offline for a moment: the next poll asks again from the same id.
    } finally {
      polling = false;
    }
  }

  // --- start ---------------------------------------------------------------------------------

  async function start() {
    try {
      const response = await fetch("/webchat/texts", { credentials: "same-origin" });
      texts = await response.json();
    } catch (error) {
      texts = {};
    }
    const saved = loadTranscript();
    const browser = (navigator.language || "en").slice(0, 2).toLowerCase();
    setLocale(saved.locale || (texts[browser] ? browser : "en"));
    if (saved.items.length) {
      // A reload: show the conversation so far; the server still knows where the resident is.
      replaying = true;
      for (const item of saved.items) {
        if (item.me !== undefined) bubble(item.me, "me");
        else if (item.pushed !== undefined) bubble(item.pushed, "bot", "notice");
        else showReply(item.reply);
      }
      replaying = false;
      transcript = saved.items;
    } else {
      bubble(t("welcome"), "bot");
      optionButtons([{ id: "menu", say: "menu", label: t("menu") }]);
    }
    input.focus();
    lastPushed = loadLastPushed();
    poll();
    setInterval(poll, POLL_MS);
    document.addEventListener("visibilitychange", poll);
  }

  start();
})();
