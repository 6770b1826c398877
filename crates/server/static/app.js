// Small conveniences that the pages work without: filtering long tables as you type, keeping
// the live parts of a page fresh, a confirmation before forms that restart or roll back tasks,
// reading an uploaded stack file into the text area before it is posted, and the registry's
// tags offered in the service form's image field.
"use strict";

function applyFilter(input) {
  const table = document.getElementById(input.dataset.filter);
  if (!table) return;
  const needle = input.value.trim().toLowerCase();
  for (const row of table.tBodies[0].rows) {
    row.hidden = needle !== "" && !row.textContent.toLowerCase().includes(needle);
  }
}

// Elements with data-live are re-read from the same page every few seconds (the page's
// data-refresh on <main>), while the tab is visible and nobody is typing in a form.
function startLiveRefresh() {
  const main = document.querySelector("main[data-refresh]");
  const live = document.querySelectorAll("[data-live][id]");
  if (!main || live.length === 0) return;
  const seconds = Math.max(2, Number(main.dataset.refresh) || 5);
  let busy = false;
  setInterval(async () => {
    const typing = document.activeElement && document.activeElement.closest("form");
    if (busy || document.hidden || typing) return;
    busy = true;
    try {
      const response = await fetch(location.href, { headers: { "Accept": "text/html" } });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const element of document.querySelectorAll("[data-live][id]")) {
        const replacement = fresh.getElementById(element.id);
        if (replacement) element.replaceChildren(...replacement.childNodes);
      }
      for (const input of document.querySelectorAll("input.filter[data-filter]")) applyFilter(input);
    } catch (_) {
      // The next tick tries again; a server restart should not spam the console.
    } finally {
      busy = false;
    }
  }, seconds * 1000);
}

// An image field with data-tags offers its repository's tags in the datalist it names, asked
// of the server (which asks the registry with its own credentials) when the repository
// changes.
function offerTags(input) {
  const list = document.getElementById(input.dataset.tags);
  if (!list) return;
  let asked = null;
  const ask = async () => {
    let repository = input.value.trim().split("@")[0];
    const colon = repository.lastIndexOf(":");
    if (colon > repository.lastIndexOf("/")) repository = repository.slice(0, colon);
    if (repository === "" || repository === asked) return;
    asked = repository;
    try {
      const response = await fetch("/api/image-tags?image=" + encodeURIComponent(repository),
        { headers: { "Accept": "application/json" } });
      if (!response.ok) return;
      const answer = await response.json();
      list.replaceChildren(...answer.tags.slice().reverse().map((tag) => {
        const option = document.createElement("option");
        option.value = repository + ":" + tag;
        return option;
      }));
    } catch (_) {
      asked = null;
    }
  };
  input.addEventListener("focus", ask);
  input.addEventListener("change", ask);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const input of document.querySelectorAll("input[data-tags]")) offerTags(input);
  for (const input of document.querySelectorAll("input.filter[data-filter]")) {
    input.addEventListener("input", () => applyFilter(input));
  }
  startLiveRefresh();
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  for (const picker of document.querySelectorAll("input[type=file][data-into]")) {
    const target = document.getElementById(picker.dataset.into);
    picker.addEventListener("change", () => {
      const file = picker.files[0];
      if (!file || !target) return;
      file.text().then((text) => { target.value = text; });
    });
  }
});
