// feed-monitor dashboard: optional niceties. Every page works without this file.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Forms that ask before acting (data-confirm="...").
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
});

// --- watchlists: the query tester answers as you type ---------------------------------
// The form (#wl-form) works alone: a GET of the page with ?q=&days=. Here, typing in it
// fetches the results part only (data-test-url, the same template, rendered and escaped
// by the server) 300 ms after the last key, abandoning the request before, and keeps the
// address in step so a reload shows the same. When the fragment cannot be had (signed out,
// watchlist gone), the full page is opened instead: it says why.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("wl-form");
  const results = document.getElementById("wl-results");
  if (!form || !results || !window.fetch || !window.AbortController) return;
  const query = form.elements.namedItem("q");
  const days = form.elements.namedItem("days");
  form.classList.add("wl-live");
  let timer = 0;
  let running = null;

  const test = () => {
    const params = new URLSearchParams({ q: query.value, days: days.value });
    const page = `${form.getAttribute("action")}?${params}`;
    if (running) running.abort();
    const controller = new AbortController();
    running = controller;
    results.classList.add("wl-busy");
    fetch(`${form.dataset.testUrl}?${params}`, {
      signal: controller.signal,
      credentials: "same-origin",
      headers: { Accept: "text/html" },
    })
      .then((response) => {
        if (response.redirected || !response.ok) throw new Error(`HTTP ${response.status}`);
        return response.text();
      })
      .then((html) => {
        if (controller !== running) return;
        results.innerHTML = html;
        window.history.replaceState(null, "", page);
      })
      .catch((error) => {
        if (error.name !== "AbortError") window.location.assign(page);
      })
      .finally(() => {
        if (controller === running) {
          running = null;
          results.classList.remove("wl-busy");
        }
      });
  };

  query.addEventListener("input", () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(test, 300);
  });
  days.addEventListener("change", () => {
    window.clearTimeout(timer);
    test();
  });
});
