// A change followed live (/jobs/ID): the deploy engine's lines are appended as the event
// stream brings them, and the page is reloaded once at the end to show the outcome and its
// links. Without scripts the page reloads itself every two seconds instead. A stream the
// server refuses (the job is gone: the server restarted) is not retried: the page is reloaded
// once and says what became of the job.
"use strict";

(function () {
  const job = document.getElementById("job");
  if (!job || job.dataset.state !== "running" || !window.EventSource) return;
  const progress = document.getElementById("progress");
  const events = new EventSource(job.dataset.events + "?after=" + encodeURIComponent(job.dataset.next));
  events.addEventListener("lines", (event) => {
    progress.append(event.data + "\n");
    job.dataset.next = event.lastEventId;
  });
  events.addEventListener("end", () => {
    events.close();
    location.reload();
  });
  events.addEventListener("error", () => {
    if (events.readyState === EventSource.CLOSED) location.reload();
  });
})();
