// graphc quiz stepper: asks for each gradient in turn and checks the typed answer.
// The diagram goes through DOMParser and loses any script or on* attribute; every text is
// set with textContent.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("gc-frames").textContent);
  var qs = data.questions;
  var $ = function (id) { return document.getElementById(id); };
  var stage = $("gc-stage"), prompt = $("gc-prompt"), answer = $("gc-answer");
  var feedback = $("gc-feedback"), progress = $("gc-progress"), score = $("gc-score");
  var prev = $("gc-prev"), next = $("gc-next"), check = $("gc-check");
  var doc = new DOMParser().parseFromString(data.svg, "image/svg+xml");
  var svg = doc.documentElement;
  svg.querySelectorAll("script, foreignObject, iframe").forEach(function (e) { e.remove(); });
  svg.querySelectorAll("*").forEach(function (e) {
    Array.prototype.slice.call(e.attributes).forEach(function (a) {
      if (/^on/i.test(a.name)) { e.removeAttribute(a.name); }
    });
  });
  stage.replaceChildren(document.importNode(svg, true));
  var index = 0, right = qs.map(function () { return false; }), current = null;

  function parse(text) {
    var t = text.trim().replace(/\u2212/g, "-").replace(",", ".");
    if (!/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(t)) { return NaN; }
    return parseFloat(t);
  }

  function show(i) {
    index = Math.max(0, Math.min(qs.length - 1, i));
    var q = qs[index];
    progress.textContent = "question " + (index + 1) + " / " + qs.length;
    prompt.textContent = q.prompt;
    answer.value = right[index] ? q.answer : "";
    feedback.textContent = right[index] ? "✓ right" : "";
    feedback.dataset.state = right[index] ? "right" : "";
    if (current) { current.classList.remove("gc-current"); }
    current = stage.querySelector('[id="' + q.node.replace(/["\\]/g, "") + '"]');
    if (current) { current.classList.add("gc-current"); }
    prev.disabled = index === 0;
    next.disabled = index === qs.length - 1;
    score.textContent = right.filter(Boolean).length + " of " + qs.length + " right";
    answer.focus();
  }

  function grade() {
    var q = qs[index], x = parse(answer.value);
    if (isNaN(x)) {
      feedback.textContent = "type a number, e.g. " + (q.value < 0 ? "-0.5" : "0.5");
      feedback.dataset.state = "wrong";
      return;
    }
    var ok = Math.abs(x - q.value) <= q.tol || parse(q.answer) === x;
    right[index] = right[index] || ok;
    feedback.textContent = ok ? "✓ right: " + q.prompt + " = " + q.answer
                              : "✗ not " + answer.value.trim() + ": try again";
    feedback.dataset.state = ok ? "right" : "wrong";
    score.textContent = right.filter(Boolean).length + " of " + qs.length + " right";
  }

  check.addEventListener("click", grade);
  prev.addEventListener("click", function () { show(index - 1); });
  next.addEventListener("click", function () { show(index + 1); });
  answer.addEventListener("keydown", function (e) {
    if (e.key !== "Enter") { return; }
    e.preventDefault();
    if (feedback.dataset.state === "right" && index < qs.length - 1) { show(index + 1); }
    else { grade(); }
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "PageDown") { e.preventDefault(); show(index + 1); }
    else if (e.key === "PageUp") { e.preventDefault(); show(index - 1); }
  });
  show(0);
})();
