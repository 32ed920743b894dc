// graphc stepper: one pre-rendered SVG diagram, and per frame its caption, its highlights
// and which numbers are computed so far (data.reveal: the frame each data-k text appears).
// Everything arrives as JSON in <script id="gc-frames" type="application/json">; every
// caption is set with textContent, and the SVG goes through DOMParser and loses any
// script, foreignObject or on* attribute before it enters the page.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("gc-frames").textContent);
  var frames = data.frames;
  var $ = function (id) { return document.getElementById(id); };
  var stage = $("gc-stage"), phase = $("gc-phase"), title = $("gc-title");
  var lines = $("gc-lines"), slider = $("gc-slider"), counter = $("gc-counter");
  var prev = $("gc-prev"), next = $("gc-next"), play = $("gc-play");
  var parser = new DOMParser();
  var index = 0, timer = null;

  function clean(root) {
    root.querySelectorAll("script, foreignObject, iframe").forEach(function (e) { e.remove(); });
    [root].concat(Array.prototype.slice.call(root.querySelectorAll("*"))).forEach(function (e) {
      Array.prototype.slice.call(e.attributes).forEach(function (a) {
        var v = a.value.replace(/\s/g, "").toLowerCase();
        if (/^on/i.test(a.name) || v.indexOf("javascript:") === 0) { e.removeAttribute(a.name); }
      });
    });
    return root;
  }

  function load(text) {
    var doc = parser.parseFromString(text, "image/svg+xml");
    var el = doc.documentElement;
    if (el.nodeName !== "svg") {
      el = document.createElement("p");
      el.textContent = "the diagram could not be read";
    }
    return document.importNode(clean(el), true);
  }
  // the pass's diagram, and (for a training step's last frames) the one with its notes
  var diagrams = data.svgs.map(load);
  var numbers = diagrams.map(function (d) {
    return Array.prototype.slice.call(d.querySelectorAll("[data-k]"));
  });
  var diagram = null, lit = [];

  function byId(id) {
    return diagram.querySelector('[id="' + String(id).replace(/["\\]/g, "") + '"]');
  }

  function show(i) {
    index = Math.max(0, Math.min(frames.length - 1, i));
    var f = frames[index];
    if (diagram !== diagrams[f.svg]) {
      diagram = diagrams[f.svg];
      stage.replaceChildren(diagram);
    }
    numbers[f.svg].forEach(function (t) {
      var at = data.reveal[t.getAttribute("data-k")];
      t.style.visibility = (at !== undefined && at <= index) ? "" : "hidden";
    });
    lit.forEach(function (e) { e.classList.remove("gc-current", "gc-hot"); });
    lit = [];
    var cur = byId(f.node);
    if (cur) { cur.classList.add("gc-current"); lit.push(cur); }
    f.hot.forEach(function (id) {
      var e = byId(id);
      if (e) { e.classList.add("gc-hot"); lit.push(e); }
    });
    stage.dataset.node = f.node;
    document.body.dataset.phase = f.phase;
    phase.textContent = {forward: "forward pass", backward: "backward pass",
                         update: "training step"}[f.phase] || f.phase;
    title.textContent = f.title;
    lines.replaceChildren();
    f.caption.forEach(function (text) {
      var div = document.createElement("div");
      div.textContent = text;
      lines.appendChild(div);
    });
    slider.value = String(index);
    counter.textContent = (index + 1) + " / " + frames.length;
    prev.disabled = index === 0;
    next.disabled = index === frames.length - 1;
    if (timer !== null && index === frames.length - 1) { pause(); }
  }

  function pause() {
    if (timer !== null) { clearInterval(timer); timer = null; }
    play.textContent = "▶ play";
    play.setAttribute("aria-pressed", "false");
  }

  function start() {
    if (index === frames.length - 1) { show(0); }
    timer = setInterval(function () { show(index + 1); }, data.interval);
    play.textContent = "❚❚ pause";
    play.setAttribute("aria-pressed", "true");
  }

  prev.addEventListener("click", function () { pause(); show(index - 1); });
  next.addEventListener("click", function () { pause(); show(index + 1); });
  play.addEventListener("click", function () { if (timer === null) { start(); } else { pause(); } });
  slider.addEventListener("input", function () { pause(); show(parseInt(slider.value, 10)); });
  document.addEventListener("keydown", function (e) {
    if (e.altKey || e.ctrlKey || e.metaKey) { return; }
    var onSlider = e.target === slider;
    if (e.key === "ArrowRight" || e.key === "PageDown" || (e.key === "ArrowDown" && !onSlider)) {
      if (onSlider) { e.preventDefault(); }
      pause(); show(index + 1);
    } else if (e.key === "ArrowLeft" || e.key === "PageUp" || (e.key === "ArrowUp" && !onSlider)) {
      if (onSlider) { e.preventDefault(); }
      pause(); show(index - 1);
    } else if (e.key === "Home") { pause(); show(0); }
    else if (e.key === "End") { pause(); show(frames.length - 1); }
    else if (e.key === " " && e.target.tagName !== "BUTTON") {
      e.preventDefault();
      if (timer === null) { start(); } else { pause(); }
    } else { return; }
  });

  slider.max = String(frames.length - 1);
  show(0);
})();
