// Keyboard first: one key per answer (data-key), n for a new type name, u to undo, Esc back to
// the queue; j/k and Enter in the queue. The queue and the line view refresh themselves.
(function () {
  "use strict";
  const typing = (e) => ["INPUT", "SELECT", "TEXTAREA"].includes(e.target.tagName);

  function queueKeys(e) {
    const items = Array.from(document.querySelectorAll(".queue .item"));
    if (!items.length) return false;
    let at = items.findIndex((i) => i.classList.contains("selected"));
    if (e.key === "j" || e.key === "ArrowDown") at = Math.min(at + 1, items.length - 1);
    else if (e.key === "k" || e.key === "ArrowUp") at = Math.max(at - 1, 0);
    else if (e.key === "Enter" && at >= 0) { items[at].querySelector("a").click(); return true; }
    else return false;
    items.forEach((i) => i.classList.remove("selected"));
    items[at].classList.add("selected");
    items[at].scrollIntoView({ block: "nearest" });
    return true;
  }

  function answerKeys(e) {
    const button = document.querySelector(`button[data-key="${CSS.escape(e.key)}"]`);
    if (button) { button.click(); return true; }
    if (e.key === "n" && document.getElementById("new-type")) {
      document.getElementById("new-type").focus(); return true;
    }
    if (e.key === "Escape" && document.body.classList.contains("request-page")) {
      window.location = "/queue"; return true;
    }
    return false;
  }

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (typing(e)) { if (e.key === "Escape") e.target.blur(); return; }
    const undo = document.getElementById("undo-form");
    const done = (e.key === "u" && undo && (undo.requestSubmit(), true)) || answerKeys(e) || queueKeys(e);
    if (done) e.preventDefault();
  });

  // The queue and the line view: the same page again every few seconds, its live part swapped in.
  async function refresh() {
    const live = document.getElementById("live");
    if (!live || document.hidden) return;
    const response = await fetch(window.location.href, { headers: { Accept: "text/html" } });
    if (!response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const selected = document.querySelector(".queue .item.selected");
    live.innerHTML = page.getElementById("live").innerHTML;
    const count = page.getElementById("open-count");
    if (count) document.getElementById("open-count").textContent = count.textContent;
    if (selected) {
      const again = document.querySelector(`.queue .item[data-event="${selected.dataset.event}"]`);
      if (again) again.classList.add("selected");
    }
  }
  if (document.getElementById("live")) setInterval(() => refresh().catch(() => {}), 5000);
})();
