// Onward dashboard: live updates without a build step.
// - The overview (an element with data-refresh) reloads its server-rendered fragment every
//   few seconds.
// - A job page (#job-live) polls the JSON API every second while the job is enqueued or
//   running, and updates its steps in place; it reloads once the job changes state.
// Job data is only ever written with textContent, never parsed as HTML.
(function () {
  "use strict";

  var FINISHED = { succeeded: true, failed: true, discarded: true, cancelled: true };

  // The same formats as the server (onward.admin.format_duration, dashboard/views.py).
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "-";
    var s = Math.max(0, seconds);
    if (s < 10) return s.toFixed(1) + "s";
    var whole = Math.floor(s);
    if (whole < 60) return whole + "s";
    if (whole < 3600) return Math.floor(whole / 60) + "m" + pad(whole % 60) + "s";
    if (whole < 86400) return Math.floor(whole / 3600) + "h" + pad(Math.floor((whole % 3600) / 60)) + "m";
    return Math.floor(whole / 86400) + "d" + Math.floor((whole % 86400) / 3600) + "h";
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function rate(perSecond) {
    if (perSecond === null || perSecond === undefined) return "-";
    if (perSecond >= 100) return thousands(Math.round(perSecond)) + "/s";
    return perSecond >= 1 ? perSecond.toFixed(1) + "/s" : (perSecond * 60).toFixed(1) + "/min";
  }
  function percent(fraction) {
    return fraction === null || fraction === undefined ? "-" : Math.floor(fraction * 100) + "%";
  }
  function thousands(n) { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ","); }
  // Items advanced (out of the total when there is one); "-" when nothing was saved and no
  // total is known, as views.done writes it.
  function done(step) {
    if (step.total !== null && step.total !== undefined) return thousands(step.advanced) + " / " + thousands(step.total);
    return step.advanced ? thousands(step.advanced) : "-";
  }
  // One-line JSON spaced like Python's json.dumps, so a value looks the same after an update.
  function json(value) {
    if (Array.isArray(value)) return "[" + value.map(json).join(", ") + "]";
    if (value !== null && typeof value === "object") {
      return "{" + Object.keys(value).map(function (k) { return JSON.stringify(k) + ": " + json(value[k]); }).join(", ") + "}";
    }
    return JSON.stringify(value);
  }
  function cut(text, limit) { return text.length > limit ? text.slice(0, limit - 1) + "\u2026" : text; }

  function field(root, name) { return root.querySelector('[data-field="' + name + '"]'); }
  function setText(root, name, text) {
    var el = field(root, name);
    if (el && el.textContent !== text) el.textContent = text;
  }
  function setBar(root, fraction, status) {
    var bar = field(root, "bar");
    if (!bar) return;
    if (fraction === null || fraction === undefined) bar.removeAttribute("value");
    else bar.value = fraction;
    bar.className = "bar bar-" + status;
  }

  // -- a job page ------------------------------------------------------------------------
  function followJob(root) {
    var api = root.getAttribute("data-api");
    var state = root.getAttribute("data-state");
    var stepCount = Number(root.getAttribute("data-steps"));
    if (FINISHED[state]) return;

    function update(data) {
      if (data.job.state !== state || data.steps.length !== stepCount) {
        window.location.reload();
        return false;
      }
      setText(root, "attempts", String(data.job.attempts));
      setText(root, "resumptions", String(data.job.resumptions));
      setText(root, "job-progress", percent(data.job.progress));
      data.steps.forEach(function (step, i) {
        var row = root.querySelector('tr[data-step="' + i + '"]');
        if (!row) return;
        var status = field(row, "status");
        if (status && status.textContent !== step.status) {
          status.textContent = step.status;
          status.className = "status status-" + step.status;
        }
        setBar(row, step.fraction, step.status);
        setText(row, "percent", percent(step.fraction));
        setText(row, "count", done(step));
        var cursor = json(step.cursor);
        setText(row, "cursor", step.cursor === null ? "-" : cut(cursor, 60));
        var cell = field(row, "cursor");
        if (cell) cell.title = cursor;
        setText(row, "rate", rate(step.rate));
        setText(row, "eta", duration(step.eta));
        setText(row, "elapsed", duration(step.elapsed));
      });
      return true;
    }

    function poll() {
      fetch(api, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (data === null || update(data)) window.setTimeout(poll, 1000);
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    }
    window.setTimeout(poll, 1000);
  }

  // -- a fragment that refreshes itself (the overview) -----------------------------------------
  function refresh(root) {
    var url = root.getAttribute("data-refresh");
    var every = Number(root.getAttribute("data-interval")) || 2000;
    function tick() {
      if (document.hidden) { window.setTimeout(tick, every); return; }
      fetch(url, { credentials: "same-origin", cache: "no-store" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          // The fragment is rendered by the server with every value escaped.
          if (html !== null) root.innerHTML = html;
          window.setTimeout(tick, every);
        })
        .catch(function () { window.setTimeout(tick, every * 2); });
    }
    window.setTimeout(tick, every);
  }

  // -- forms that ask first ----------------------------------------------------------------
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });

  document.addEventListener("DOMContentLoaded", function () {
    var job = document.getElementById("job-live");
    if (job) followJob(job);
    var live = document.querySelectorAll("[data-refresh]");
    for (var i = 0; i < live.length; i++) refresh(live[i]);
  });
})();
