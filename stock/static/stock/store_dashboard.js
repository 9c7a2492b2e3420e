/* The store dashboard keeps itself current from the store's stock events.
 *
 * The page was rendered as of event `seq` (embedded in #dashboard-config). Events after
 * it come from the live stream (Server-Sent Events, `id:` = seq) or, when the stream is
 * not there (the embedded `make run` has no events process), from the events API polled
 * with `?after=<last seq>`. Both feed `applyEvents`, which takes each seq once and in
 * order, so a stream and a poll that overlap change nothing twice.
 *
 * Applying an event: the row of its SKU gets the new numbers and badge; the header's
 * counts move by what the row's status changed (the event carries the values after the
 * change, the row holds those before); an event of a level the page does not show makes
 * the script read the counts again (/stores/<code>/summary/); the latest movements are
 * read again from the movements API. Every value is written with textContent.
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("dashboard-config").textContent);
  const EVENT_TYPES = ["stock.changed", "stock.low", "stock.out", "stock.back_in_stock"];
  const STREAM_RETRY_MS = 60000;

  let lastSeq = config.seq; // the last event applied to the rows
  let countsSeq = config.seq; // the last event the header's counts hold
  const counts = Object.assign({}, config.counts);
  let day = { start: Date.parse(config.day_start), end: Date.parse(config.day_end) };

  const status = document.getElementById("live-status");
  const levels = document.querySelector("#levels tbody");

  function setMode(mode, text) {
    status.dataset.mode = mode;
    status.textContent = text;
  }

  // --- Rows and counts --------------------------------------------------------------

  function levelState(available, reorderPoint) {
    if (available === 0) return "out";
    return available <= reorderPoint ? "low" : "ok";
  }

  function rowOf(sku) {
    for (const row of levels.rows) {
      if (row.dataset.sku === sku) return row;
    }
    return null;
  }

  function cell(row, name) {
    return row.querySelector("." + name);
  }

  function newRow(sku) {
    const empty = levels.querySelector("tr.empty");
    if (empty) empty.remove();
    const row = document.createElement("tr");
    row.dataset.sku = sku;
    row.dataset.version = "0";
    const head = document.createElement("th");
    head.scope = "row";
    head.className = "sku";
    head.textContent = sku;
    row.appendChild(head);
    for (const name of ["name", "available", "on-hand", "reserved", "reorder-point", "status"]) {
      const td = document.createElement("td");
      td.className = name;
      row.appendChild(td);
    }
    levels.appendChild(row);
    return row;
  }

  function showBadge(row, state) {
    const place = cell(row, "status");
    place.replaceChildren();
    if (state === "ok") return;
    const badge = document.createElement("span");
    badge.className = "badge badge-" + state;
    badge.textContent = state.toUpperCase();
    place.appendChild(badge);
  }

  function updateRow(row, event) {
    row.dataset.version = String(event.version);
    row.dataset.available = String(event.available);
    row.dataset.reorderPoint = String(event.reorder_point);
    cell(row, "available").textContent = String(event.available);
    cell(row, "on-hand").textContent = String(event.on_hand);
    cell(row, "reserved").textContent = String(event.reserved);
    cell(row, "reorder-point").textContent = String(event.reorder_point);
    showBadge(row, levelState(event.available, event.reorder_point));
    row.classList.remove("changed");
    void row.offsetWidth; // restart the highlight
    row.classList.add("changed");
  }

  function count(state, by) {
    if (state === "out") counts.out += by;
    if (state === "out" || state === "low") counts.low += by;
  }

  function showCounts() {
    document.getElementById("count-low").textContent = String(counts.low);
    document.getElementById("count-out").textContent = String(counts.out);
    document.getElementById("count-changes-today").textContent = String(counts.changes_today);
  }

  /* Returns whether the counts must be read again from the server.
   *
   * A level's events come with the version after them; a change of its reorder point
   * moves no stock and keeps the version of the one before it. So an event of an older
   * version than the row's is shown already, and one of the row's own version is a
   * reorder point change: its badge may change, "changes today" (movements) does not. */
  function applyEvent(event) {
    let row = rowOf(event.sku);
    let before = null; // the level's state before the event, when the page knows it
    let moved = true; // whether a movement made the event
    if (row) {
      const shown = Number(row.dataset.version);
      if (event.version < shown) return false; // shown already
      moved = event.version > shown;
      before = levelState(Number(row.dataset.available), Number(row.dataset.reorderPoint));
    } else if (config.shows_every_level) {
      row = newRow(event.sku); // a level the store did not have
      moved = event.version > 0; // a reorder point set before any stock is version 0
    }
    if (row) updateRow(row, event);
    if (event.seq <= countsSeq) return false;
    const at = Date.parse(event.at);
    if (at >= day.end) return true; // a new day: "changes today" starts again
    if (at >= day.start && moved) counts.changes_today += 1;
    if (!row) return true;
    if (before !== null) count(before, -1);
    count(levelState(event.available, event.reorder_point), +1);
    return false;
  }

  function applyEvents(events) {
    let recount = false;
    let applied = 0;
    for (const event of events) {
      if (event.seq <= lastSeq) continue; // heard already, by the stream or a poll
      lastSeq = event.seq;
      applied += 1;
      if (applyEvent(event)) recount = true;
    }
    if (!applied) return;
    if (recount) refreshSummary();
    else countsSeq = Math.max(countsSeq, lastSeq);
    showCounts();
    refreshMovements();
  }

  // --- Reads from the server ----------------------------------------------------------

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error(url + " answered " + response.status);
        return response.json();
      });
  }

  let summaryDue = false;
  function refreshSummary() {
    if (summaryDue) return;
    summaryDue = true;
    setTimeout(function () {
      summaryDue = false;
      getJson(config.summary_url).then(function (summary) {
        if (summary.seq < lastSeq) return refreshSummary(); // older than the rows: again
        if (summary.seq <= countsSeq) return;
        countsSeq = summary.seq;
        counts.low = summary.low;
        counts.out = summary.out;
        counts.changes_today = summary.changes_today;
        day = { start: Date.parse(summary.day_start), end: Date.parse(summary.day_end) };
        showCounts();
      }).catch(function () { setTimeout(refreshSummary, config.poll_seconds * 1000); });
    }, 200);
  }

  let movementsDue = false;
  function refreshMovements() {
    if (movementsDue) return;
    movementsDue = true;
    setTimeout(function () {
      movementsDue = false;
      getJson(config.movements_url).then(function (page) {
        showMovements(page.results);
      }).catch(function () { /* the next event tries again */ });
    }, 300);
  }

  function movementChange(movement) {
    const parts = [];
    const sign = function (n) { return (n > 0 ? "+" : "") + n; };
    if (movement.delta_on_hand || !movement.delta_reserved) {
      parts.push("on hand " + sign(movement.delta_on_hand) + " \u2192 " + movement.on_hand_after);
    }
    if (movement.delta_reserved) {
      parts.push("reserved " + sign(movement.delta_reserved) + " \u2192 " + movement.reserved_after);
    }
    return parts;
  }

  function showMovements(movements) {
    const body = document.querySelector("#movements tbody");
    const rows = movements.map(function (movement) {
      const row = document.createElement("tr");
      row.dataset.movement = String(movement.id);
      const values = {
        when: movement.created_at.slice(0, 19).replace("T", " "),
        sku: movement.sku,
        kind: config.kinds[movement.kind] || movement.kind,
        change: null,
        who: movement.actor || "\u2014",
        why: [movement.reason, movement.reference, movement.note].filter(Boolean).join(" \u00b7 "),
      };
      for (const name of Object.keys(values)) {
        const td = document.createElement("td");
        td.className = name;
        if (name === "change") {
          movementChange(movement).forEach(function (line, index) {
            if (index) td.appendChild(document.createElement("br"));
            td.appendChild(document.createTextNode(line));
          });
        } else {
          td.textContent = values[name];
        }
        row.appendChild(td);
      }
      return row;
    });
    if (rows.length) body.replaceChildren.apply(body, rows);
  }

  // --- Where the events come from -----------------------------------------------------

  let pollTimer = null;
  let polling = false;

  function poll() {
    pollTimer = null;
    getJson(config.events_url + "?after=" + lastSeq).then(function (page) {
      if (!polling) return;
      setMode("polling", "Live: checking for changes every " + config.poll_seconds + " s.");
      applyEvents(page.results);
      pollTimer = setTimeout(poll, page.next ? 0 : config.poll_seconds * 1000);
    }).catch(function (error) {
      if (!polling) return;
      setMode("offline", "Not live: " + error.message + "; trying again.");
      pollTimer = setTimeout(poll, config.poll_seconds * 1000);
    });
  }

  function startPolling() {
    if (polling) return;
    polling = true;
    poll();
  }

  function stopPolling() {
    polling = false;
    if (pollTimer) clearTimeout(pollTimer);
    pollTimer = null;
  }

  function connectStream() {
    if (!config.stream_url || !window.EventSource) return startPolling();
    const stream = new EventSource(config.stream_url + "?after=" + lastSeq, { withCredentials: true });
    stream.onopen = function () {
      stopPolling();
      setMode("stream", "Live: following the store's event stream.");
    };
    const onEvent = function (message) { applyEvents([JSON.parse(message.data)]); };
    for (const type of EVENT_TYPES) stream.addEventListener(type, onEvent);
    stream.onerror = function () {
      // Reconnecting (the browser does, with Last-Event-ID) or refused for good (no
      // events process here): poll meanwhile; a refused stream is tried again later.
      startPolling();
      if (stream.readyState === EventSource.CLOSED) setTimeout(connectStream, STREAM_RETRY_MS);
    };
  }

  connectStream();
})();
