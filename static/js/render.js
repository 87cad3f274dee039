// Client side of review/rendering.py: math by KaTeX's auto-render and code by highlight.js, in every
// element with class "md", on page load and in every fragment htmx swaps in. No inline script (CSP):
// pages include templates/review/_render_assets.html, which loads the libraries and this file.
(function () {
  "use strict";
  var DELIMITERS = [
    { left: "$$", right: "$$", display: true },
    { left: "\\[", right: "\\]", display: true },
    { left: "\\(", right: "\\)", display: false },
    { left: "$", right: "$", display: false },
  ];

  function renderOne(el) {
    if (el.dataset.rendered === "1") return;
    if (typeof window.renderMathInElement === "function") {
      window.renderMathInElement(el, { delimiters: DELIMITERS, throwOnError: false, strict: "ignore", trust: false });
    }
    if (window.hljs) {
      el.querySelectorAll("pre code").forEach(function (code) { window.hljs.highlightElement(code); });
    }
    el.dataset.rendered = "1";
  }

  function renderWithin(root) {
    if (!root || !root.querySelectorAll) return;
    if (root.matches && root.matches(".md")) renderOne(root);
    root.querySelectorAll(".md").forEach(renderOne);
  }

  if (window.hljs) window.hljs.configure({ ignoreUnescapedHTML: true });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { renderWithin(document); });
  } else {
    renderWithin(document);
  }
  // htmx:load fires for every element htmx adds (including the first page load); afterSwap covers
  // swaps whose new content is text inside an existing element.
  document.addEventListener("htmx:load", function (event) { renderWithin(event.detail.elt); });
  document.addEventListener("htmx:afterSwap", function (event) { renderWithin(event.detail.target); });
})();
