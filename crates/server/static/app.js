// Small conveniences that the pages work without: filtering long tables as you type, a
// confirmation before forms that restart or roll back tasks, and reading an uploaded stack file
// into the text area before it is posted.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const input of document.querySelectorAll("input.filter[data-filter]")) {
    const table = document.getElementById(input.dataset.filter);
    if (!table) continue;
    input.addEventListener("input", () => {
      const needle = input.value.trim().toLowerCase();
      for (const row of table.tBodies[0].rows) {
        row.hidden = needle !== "" && !row.textContent.toLowerCase().includes(needle);
      }
    });
  }
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
