// ossjobwatch console: the live view. New events arrive as Server-Sent
// Events (JSON) and become table rows built with textContent, never HTML.
(function () {
  "use strict";
  var table = document.getElementById("live");
  if (!table || !window.EventSource) {
    return;
  }
  var rows = document.getElementById("live-rows");
  var state = document.getElementById("live-state");
  var maxRows = 500;
  var shown = new Set();
  rows.querySelectorAll("tr[data-id]").forEach(function (tr) { shown.add(tr.dataset.id); });

  function setState(s, text) {
    state.dataset.state = s;
    state.textContent = text;
  }

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    if (cls) {
      td.className = cls;
    }
    if (text !== undefined) {
      td.textContent = text;
    }
    tr.appendChild(td);
    return td;
  }

  function addRow(ev) {
    if (shown.has(ev.id)) {
      return; // seen before a reconnect
    }
    shown.add(ev.id);
    var tr = document.createElement("tr");
    tr.dataset.id = ev.id;
    tr.className = "fresh";
    var time = document.createElement("time");
    time.title = ev.observedAbs;
    time.textContent = ev.observed;
    cell(tr).appendChild(time);
    cell(tr, ev.target);
    var kind = document.createElement("span");
    kind.className = "kind";
    kind.textContent = ev.kind;
    cell(tr).appendChild(kind);
    var st = document.createElement("span");
    st.className = ev.statusClass;
    st.textContent = ev.status;
    cell(tr).appendChild(st);
    var a = document.createElement("a");
    a.href = ev.jobUrl;
    a.textContent = ev.jobId;
    cell(tr, undefined, "id").appendChild(a);
    cell(tr, ev.summary);
    cell(tr, ev.description, "desc");
    rows.insertBefore(tr, rows.firstChild);
    while (rows.children.length > maxRows) {
      var last = rows.lastElementChild;
      shown.delete(last.dataset.id);
      rows.removeChild(last);
    }
    var empty = document.getElementById("live-empty");
    if (empty) {
      empty.remove();
    }
  }

  var source = new EventSource(table.dataset.stream);
  setState("connecting", "connecting…");
  source.onopen = function () { setState("open", "live: new events appear as sweeps write them"); };
  source.onerror = function () { setState("error", "disconnected; reconnecting…"); };
  source.addEventListener("job", function (e) { addRow(JSON.parse(e.data)); });
  source.addEventListener("skipped", function (e) {
    setState("open", "live: " + e.data + " events skipped in a burst; the Jobs page has them all");
  });
})();
