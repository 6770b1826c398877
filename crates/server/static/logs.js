// The logs page: follows /api/services/{service}/logs (server-sent events, see
// crates/server/src/routes/logs.rs for the format) and draws the lines into #log.
//
// - Log text is only ever set with textContent: it is data, never markup.
// - Lines are queued as they arrive and the page is redrawn at most once per animation frame,
//   with at most MAX_LINES lines: a stream of 50,000 lines a second costs the page about what
//   a slow one does, and #log never holds more than MAX_LINES lines.
// - Pause keeps receiving (the counter goes on) and holds the newest MAX_LINES lines back;
//   resume draws them. Nothing the view could hold is lost while paused.
// - The view follows the newest line unless the user scrolled up.
// - A dropped connection reconnects by itself and resumes after the last line received (the
//   event id), so lines are neither repeated nor skipped.
"use strict";

(() => {
  const MAX_LINES = 5000;
  const log = document.getElementById("log");
  const form = document.getElementById("logform");
  if (!log || !form) return;
  const api = log.dataset.api;
  const status = document.getElementById("logstatus");
  const errorBox = document.getElementById("logerror");
  const counter = document.getElementById("counter");
  const pauseButton = document.getElementById("pause");
  const clearButton = document.getElementById("clear");
  const download = document.getElementById("download");
  const numbers = new Intl.NumberFormat();

  let source = null; // the EventSource
  let url = "";
  let pending = []; // received, not drawn yet; oldest first
  let received = 0; // lines received since the stream (re)started
  let heldSince = 0; // `received` when pause was pressed
  let shown = 0; // line elements in #log
  let paused = false;
  let stick = true; // keep the newest line in view
  let frame = 0;

  function setStatus(text) {
    status.textContent = text;
  }

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = false;
  }

  function hideError() {
    errorBox.hidden = true;
    errorBox.textContent = "";
  }

  /** The API query from the form: tail, since, grep, timestamps, all_tasks. */
  function params() {
    const data = new FormData(form);
    const out = new URLSearchParams();
    for (const key of ["tail", "since"]) {
      const value = String(data.get(key) || "").trim();
      if (value !== "") out.set(key, value);
    }
    const grep = String(data.get("grep") || "");
    if (grep !== "") out.set("grep", grep);
    if (data.get("timestamps")) out.set("timestamps", "1");
    if (data.get("all_tasks")) out.set("all_tasks", "1");
    return out;
  }

  function withQuery(path, query) {
    const text = query.toString();
    return text === "" ? path : path + "?" + text;
  }

  function updateDownload() {
    download.href = withQuery(api + "/download", params());
  }

  function render(line) {
    const row = document.createElement("div");
    if (line.stream === "stderr") row.className = "err";
    if (line.time) {
      const time = document.createElement("span");
      time.className = "ts";
      time.textContent = line.time + " ";
      row.appendChild(time);
    }
    const task = document.createElement("span");
    task.className = "task";
    task.textContent = line.task;
    row.appendChild(task);
    row.appendChild(document.createTextNode(" | " + line.text));
    return row;
  }

  function schedule() {
    if (frame === 0) frame = window.requestAnimationFrame(draw);
  }

  function draw() {
    frame = 0;
    counter.textContent = numbers.format(received) + (received === 1 ? " line" : " lines");
    if (paused) {
      setStatus("paused: " + numbers.format(received - heldSince) + " new");
      return;
    }
    if (pending.length === 0) return;
    let lines = pending;
    pending = [];
    if (lines.length >= MAX_LINES) {
      lines = lines.slice(lines.length - MAX_LINES);
      log.textContent = "";
      shown = 0;
    }
    const fragment = document.createDocumentFragment();
    for (const line of lines) fragment.appendChild(render(line));
    // Removing from the front of a child list is cheap in browsers, one node at a time.
    for (let excess = shown + lines.length - MAX_LINES; excess > 0; excess--) {
      log.firstChild.remove();
      shown--;
    }
    log.appendChild(fragment);
    shown += lines.length;
    if (stick) log.scrollTop = log.scrollHeight;
  }

  function queue(batch) {
    for (const line of batch) pending.push(line);
    // Only the newest MAX_LINES can ever be shown: drop the rest now and then, not per line.
    if (pending.length > 2 * MAX_LINES) pending = pending.slice(pending.length - MAX_LINES);
  }

  function stop(text) {
    if (source) source.close();
    source = null;
    pauseButton.disabled = true;
    setStatus(text);
    schedule();
  }

  /** Why the stream could not start: the API answers the same URL with a JSON error. */
  function explain(failed) {
    const abort = new AbortController();
    fetch(failed, { signal: abort.signal, headers: { Accept: "application/json" } })
      .then((response) => {
        if (response.ok) {
          abort.abort();
          showError("The log stream closed. Apply to start it again.");
          return null;
        }
        return response.json().then((body) => showError(body.error || response.statusText));
      })
      .catch(() => showError("The server cannot be reached. Apply to try again."));
  }

  function start() {
    if (source) source.close();
    hideError();
    pending = [];
    received = 0;
    heldSince = 0;
    shown = 0;
    log.textContent = "";
    stick = true;
    url = withQuery(api, params());
    setStatus("connecting…");
    const es = new EventSource(url);
    source = es;
    es.onopen = () => {
      pauseButton.disabled = false;
      if (!paused) setStatus("streaming");
    };
    es.addEventListener("lines", (event) => {
      // One JSON object per data line; the browser joined them with "\n".
      const batch = JSON.parse("[" + event.data.replace(/\n/g, ",") + "]");
      received += batch.length;
      queue(batch);
      schedule();
    });
    es.addEventListener("unreadable", (event) => {
      showError(event.data);
      stop("not streaming");
    });
    es.addEventListener("end", () => stop("end of the logs"));
    es.addEventListener("failed", (event) => {
      // The server ends the stream; EventSource reconnects after the last line it had.
      setStatus("reconnecting: " + event.data);
    });
    es.onerror = () => {
      if (es !== source) return;
      if (es.readyState === EventSource.CLOSED) {
        stop("not streaming");
        explain(url);
      } else {
        setStatus("reconnecting…");
      }
    };
  }

  log.addEventListener("scroll", () => {
    stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
  });

  pauseButton.addEventListener("click", () => {
    paused = !paused;
    pauseButton.textContent = paused ? "Resume" : "Pause";
    if (paused) {
      heldSince = received;
    } else {
      setStatus(source ? "streaming" : "not streaming");
    }
    schedule();
  });

  clearButton.addEventListener("click", () => {
    pending = [];
    log.textContent = "";
    shown = 0;
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    window.history.replaceState(null, "", withQuery(window.location.pathname, params()));
    updateDownload();
    start();
  });

  form.addEventListener("input", updateDownload);

  for (const name of ["timestamps", "all_tasks"]) {
    form.elements.namedItem(name).addEventListener("change", () => {
      window.history.replaceState(null, "", withQuery(window.location.pathname, params()));
      updateDownload();
      start();
    });
  }

  updateDownload();
  if (log.dataset.start === "yes") start();
})();
