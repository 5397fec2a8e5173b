// Support ticket conversation: poll for new messages and append them (no reload needed).
// Without JavaScript the page still works: reloading shows every message.
(function () {
  "use strict";
  var thread = document.getElementById("thread");
  if (!thread || !window.fetch) { return; }
  var url = thread.getAttribute("data-poll-url");
  var after = parseInt(thread.getAttribute("data-after"), 10) || 0;
  var interval = (parseInt(thread.getAttribute("data-interval"), 10) || 5) * 1000;
  var status = document.getElementById("ticket-status");
  var busy = false;
  var stopped = false;

  function text(tag, className, value) {
    var el = document.createElement(tag);
    if (className) { el.className = className; }
    el.textContent = value;
    return el;
  }

  function append(m) {
    if (document.getElementById("m-" + m.seq)) { return; }
    var li = document.createElement("li");
    li.className = m.from_support ? "message message--support" : "message";
    li.id = "m-" + m.seq;
    var meta = document.createElement("p");
    meta.className = "message__meta";
    meta.appendChild(text("strong", "", m.author));
    var when = m.when || m.at;
    meta.appendChild(document.createTextNode((m.from_support ? " (Provider Center support)" : "") + " · " + when));
    li.appendChild(meta);
    li.appendChild(text("p", "message__body", m.body));
    thread.appendChild(li);
  }

  function poll() {
    if (busy || stopped || document.hidden) { return; }
    busy = true;
    fetch(url + "?after=" + after, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        // Signed out (a redirect to sign in) or the ticket is gone: stop; a reload says why.
        if (!response.ok || type.indexOf("application/json") !== 0) { stopped = true; return null; }
        return response.json();
      })
      .then(function (data) {
        if (!data) { return; }
        data.messages.forEach(function (m) {
          append(m);
          if (m.seq > after) { after = m.seq; }
        });
        if (status) { status.textContent = data.status === "open" ? "Open" : "Closed"; }
      })
      .catch(function () { /* offline for a moment: try again next tick */ })
      .then(function () { busy = false; });
  }

  window.setInterval(poll, interval);
})();
