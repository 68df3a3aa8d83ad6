// Signoff dashboard: local times, keyboard shortcuts and live queue updates. The pages work without it.
"use strict";

// Times: the server writes UTC; show them in the viewer's time zone, UTC stays in the title.
function localTimes(root) {
  for (const time of root.querySelectorAll("time[datetime]")) {
    const at = new Date(time.getAttribute("datetime"));
    if (!isNaN(at)) time.textContent = at.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }
}

function typing(event) {
  const target = event.target;
  return target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName);
}

// Keys: j/k move through the queue, a/r/e go to approve, reject and edit on a request page.
function shortcuts(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || typing(event)) return;
  const focus = (selector) => {
    const element = document.querySelector(selector);
    if (!element) return false;
    element.focus();
    element.scrollIntoView({ block: "center" });
    return true;
  };
  if (event.key === "a" && focus("#approve")) event.preventDefault();
  if (event.key === "r" && focus("#reject-comment")) event.preventDefault();
  if (event.key === "e" && focus("#edit-args")) event.preventDefault();
  if (event.key === "j" || event.key === "k") {
    const links = [...document.querySelectorAll(".row .title")];
    if (links.length === 0) return;
    const at = links.indexOf(document.activeElement);
    const next = event.key === "j" ? Math.min(at + 1, links.length - 1) : Math.max(at - 1, 0);
    links[at === -1 ? 0 : next].focus();
    event.preventDefault();
  }
}

// Live queue: on each change the server announces, fetch this page again and swap its queue in.
function liveQueue() {
  const queue = document.querySelector("[data-live=queue]");
  if (!queue || !window.EventSource) return;
  let pending = null;
  const refresh = async () => {
    pending = null;
    const response = await fetch(location.href, { credentials: "same-origin" });
    if (!response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.querySelector("[data-live=queue]");
    if (!fresh) return;
    const focused = document.activeElement && document.activeElement.closest(".row");
    const focusedId = focused && focused.dataset.id;
    queue.innerHTML = fresh.innerHTML;
    localTimes(queue);
    if (focusedId) {
      const again = queue.querySelector(`.row[data-id="${CSS.escape(focusedId)}"] .title`);
      if (again) again.focus();
    }
  };
  const events = new EventSource("/live");
  events.addEventListener("change", () => {
    if (!pending) pending = setTimeout(refresh, 100);
  });
  document.documentElement.dataset.live = "connecting";
  events.addEventListener("open", () => { document.documentElement.dataset.live = "open"; });
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  document.addEventListener("keydown", shortcuts);
  liveQueue();
});
