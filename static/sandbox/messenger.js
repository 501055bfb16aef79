// The Messenger emulator: renders one demo person's thread, sends what they
// type through the server (which signs the webhook), and listens to the
// stand-in Send API over server-sent events.
"use strict";
(function () {
  const root = document.getElementById("emulator");
  const psid = root.dataset.psid;
  const thread = document.getElementById("thread");
  const typing = document.getElementById("typing");
  const chips = document.getElementById("chips");
  const input = document.getElementById("text");
  const shown = new Map(); // mid -> <li>
  let seenAt = 0;
  let lastMine = null;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function time(at) {
    return new Date(at).toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" });
  }

  function button(b) {
    if (b.type === "web_url") {
      const a = el("a", "btn", b.title);
      a.href = b.url;
      a.target = "_blank";
      a.rel = "noopener";
      return a;
    }
    const btn = el("button", "btn", b.title);
    btn.type = "button";
    btn.addEventListener("click", () => say({ postback: { title: b.title, payload: b.payload } }));
    return btn;
  }

  function pageContent(m) {
    const box = el("div", "content");
    if (typeof m.text === "string") {
      box.appendChild(el("div", "bubble", m.text));
    }
    const a = m.attachment;
    if (a && a.type === "template" && a.payload) {
      const p = a.payload;
      if (p.template_type === "button") {
        const card = el("div", "bubble template");
        card.appendChild(el("p", "", p.text));
        const row = el("div", "buttons");
        (p.buttons || []).forEach((b) => row.appendChild(button(b)));
        card.appendChild(row);
        box.appendChild(card);
      } else if (p.template_type === "generic") {
        const cards = el("div", "cards");
        (p.elements || []).forEach((e) => {
          const card = el("div", "card");
          if (e.image_url) {
            const img = el("img");
            img.src = e.image_url;
            img.alt = "";
            card.appendChild(img);
          }
          card.appendChild(el("strong", "", e.title));
          if (e.subtitle) card.appendChild(el("small", "", e.subtitle));
          const row = el("div", "buttons");
          (e.buttons || []).forEach((b) => row.appendChild(button(b)));
          card.appendChild(row);
          cards.appendChild(card);
        });
        box.appendChild(cards);
      }
    } else if (a && a.payload && a.payload.url) {
      if (a.type === "image") {
        const img = el("img", "bubble media");
        img.src = a.payload.url;
        img.alt = "image";
        box.appendChild(img);
      } else {
        const link = el("a", "bubble", a.type + " attachment");
        link.href = a.payload.url;
        box.appendChild(link);
      }
    }
    return box;
  }

  function personText(m) {
    if (m.postback) return m.postback.title;
    return m.text || "";
  }

  function showChips(m) {
    chips.replaceChildren();
    (m.quick_replies || []).forEach((q) => {
      const chip = el("button", "chip", q.title);
      chip.type = "button";
      chip.addEventListener("click", () => say({ quick_reply: { title: q.title, payload: q.payload } }));
      chips.appendChild(chip);
    });
  }

  function mark(li, status) {
    const s = li.querySelector(".status");
    if (s) {
      s.textContent = status;
      s.dataset.status = status.toLowerCase().replace(/ /g, "-");
    }
  }

  function add(entry) {
    if (shown.has(entry.mid)) return shown.get(entry.mid);
    const mine = entry.from === "person";
    const li = el("li", mine ? "msg mine" : "msg page");
    li.dataset.mid = entry.mid;
    li.title = time(entry.at);
    if (mine) {
      li.appendChild(el("div", "bubble", personText(entry.message)));
      li.appendChild(el("span", "status", ""));
      lastMine = li;
      chips.replaceChildren();
      mark(li, entry.at <= seenAt ? "Seen" : "Sent");
    } else {
      if (entry.tag) li.appendChild(el("span", "tag", entry.tag));
      li.appendChild(pageContent(entry.message));
      showChips(entry.message);
    }
    const prev = thread.lastElementChild;
    if (!prev || entry.at - Number(prev.dataset.at || 0) > 3600000) {
      thread.appendChild(el("li", "when", time(entry.at)));
    }
    li.dataset.at = entry.at;
    thread.appendChild(li);
    shown.set(entry.mid, li);
    thread.scrollTop = thread.scrollHeight;
    if (!mine) readSoon();
    return li;
  }

  function seen(at) {
    seenAt = Math.max(seenAt, at);
    thread.querySelectorAll("li.mine").forEach((li) => {
      if (Number(li.dataset.at) <= seenAt) mark(li, "Seen");
    });
  }

  let readTimer = null;
  function readSoon() {
    clearTimeout(readTimer);
    readTimer = setTimeout(() => {
      if (document.visibilityState !== "visible") return;
      fetch("/sandbox/messenger/read", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ psid }),
      }).catch(() => {});
    }, 400);
  }

  async function say(what) {
    const body = Object.assign({ psid }, what);
    const answer = await fetch("/sandbox/messenger/send", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = await answer.json().catch(() => ({}));
    if (data.mid && !shown.has(data.mid)) {
      const message = what.postback ? { postback: what.postback }
        : { text: what.text || (what.quick_reply && what.quick_reply.title) };
      add({ mid: data.mid, from: "person", at: data.at || Date.now(), message });
    }
    const li = data.mid && shown.get(data.mid);
    if (li) mark(li, answer.ok ? (Number(li.dataset.at) <= seenAt ? "Seen" : "Delivered") : "Not delivered");
    if (!answer.ok && !data.mid) alert(data.error || "The message could not be sent.");
  }

  const handover = document.getElementById("handover");
  function owner(app) {
    handover.hidden = !app;
  }

  document.getElementById("talk-to-person").addEventListener("click", () =>
    say({ postback: { title: "Talk to a person", payload: "HANDOVER" } }));

  document.getElementById("hand-back").addEventListener("click", async () => {
    const answer = await fetch("/sandbox/messenger/hand-back", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ psid }),
    });
    if (!answer.ok) {
      const data = await answer.json().catch(() => ({}));
      alert(data.error || "The thread could not be handed back.");
    }
  });

  async function history() {
    const answer = await fetch("/sandbox/messenger/history?psid=" + encodeURIComponent(psid));
    if (!answer.ok) return false;
    const t = await answer.json();
    owner(t.owner);
    seenAt = t.seen_at || 0;
    (t.entries || []).forEach(add);
    seen(seenAt);
    return true;
  }

  function handle(event) {
    if (event.type === "message") {
      if (event.entry.from === "page") typing.hidden = true;
      add(event.entry);
    } else if (event.type === "typing") {
      typing.hidden = !event.on;
      if (event.on) thread.scrollTop = thread.scrollHeight;
    } else if (event.type === "seen") {
      seen(event.at);
    } else if (event.type === "owner") {
      owner(event.owner);
    } else if (event.type === "lagged") {
      history();
    }
  }

  // Listen first, then load the history: an answer sent while the history
  // is on its way is in one or the other (add() skips a message shown
  // twice), never lost between them. Events that arrive before the history
  // is shown wait for it, so the thread stays in order. After a dropped
  // connection the history is loaded again for what was missed meanwhile.
  // The emulator is marked live (data-live) once nothing can be missed.
  function listen() {
    const events = new EventSource("/sandbox/messenger/events?psid=" + encodeURIComponent(psid));
    let waiting = [];
    events.onmessage = (e) => {
      const event = JSON.parse(e.data);
      if (waiting) waiting.push(event);
      else handle(event);
    };
    events.onopen = async () => {
      if (!waiting) {
        history();
        return;
      }
      let loaded = false;
      try {
        loaded = await history();
      } finally {
        const queued = waiting;
        waiting = null;
        queued.forEach(handle);
        if (loaded) root.dataset.live = "true";
      }
    };
  }

  document.getElementById("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    say({ text });
  });

  document.getElementById("ping").addEventListener("submit", async (e) => {
    e.preventDefault();
    const result = document.getElementById("ping-result");
    const request = {
      to: root.dataset.channel === "instagram" ? { instagram: { igsid: psid } } : { psid },
      message: { text: document.getElementById("ping-text").value },
      if_outside_window: document.getElementById("ping-outside").value,
    };
    if (document.getElementById("ping-human").checked) request.tag = "HUMAN_AGENT";
    result.textContent = "…";
    try {
      const answer = await fetch("/api/v1/messages", {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Authorization: "Bearer " + document.getElementById("ping-key").value.trim(),
        },
        body: JSON.stringify(request),
      });
      const text = await answer.text();
      let shownText = text;
      try { shownText = JSON.stringify(JSON.parse(text), null, 2); } catch (_) { /* not JSON */ }
      result.textContent = "HTTP " + answer.status + "\n" + shownText;
      result.dataset.status = String(answer.status);
    } catch (err) {
      result.textContent = "The API could not be reached: " + err;
    }
  });

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") readSoon();
  });

  listen();
  input.focus({ preventScroll: true });
})();
