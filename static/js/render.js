// Client side of review/rendering.py: math by KaTeX and code by highlight.js, in every element with class
// "md", on page load and in every fragment htmx swaps in. No inline script (CSP): pages include
// templates/review/_render_assets.html, which loads the libraries and this file (its data- attributes
// carry the translated words for formulas left as source).
//
// The server has already decided what is math: each formula is a <span class="math"> holding its source
// with its delimiters. Model output is hostile, so each formula is bounded before and after KaTeX:
// - KaTeX caps every size the formula asks for (\rule, \kern, \hspace) at maxSize em and the number of
//   macro expansions at maxExpand.
// - A formula may not define macros (\def, \newcommand, …): a definition used in a loop turns a short
//   formula into a huge one (measured: 176 characters became 64,000 elements, 5 s of a frozen tab), and
//   without them every expansion is one of KaTeX's own, whose output grows with the source.
// - Nesting crashes the tab, not KaTeX: \sqrt{ nested 200 deep (1.4 KB) becomes elements ~1,200 deep, and
//   Chromium's layout crashes at about 900 (measured with KaTeX 0.19 in Chromium 156). A formula nested
//   deeper than MAX_NESTING (real ones nest a few levels; the COIG-P sample at most 2) or longer than
//   MAX_LENGTH (the sample's longest has 463 characters) is not given to KaTeX, and what KaTeX makes enters
//   the page only if it is at most MAX_TREE_DEPTH elements deep (built in a detached element, so nothing is
//   laid out before that).
// Such a formula, or one KaTeX cannot parse, stays as its source text after a small marker whose title says why.
(function () {
  "use strict";
  var DELIMITERS = [
    { left: "$$", right: "$$", display: true },
    { left: "\\[", right: "\\]", display: true },
    { left: "\\(", right: "\\)", display: false },
    { left: "$", right: "$", display: false },
  ];
  var KATEX_OPTIONS = { throwOnError: true, strict: "ignore", trust: false, maxSize: 20, maxExpand: 1000 };
  var MAX_LENGTH = 4000;
  var MAX_NESTING = 20;
  var MAX_TREE_DEPTH = 300;
  var OPENERS = ["{", "\\left", "\\begin"];
  var CLOSERS = ["}", "\\right", "\\end"];
  var DEFINITIONS = ["\\def", "\\gdef", "\\edef", "\\xdef", "\\let", "\\futurelet", "\\newcommand",
    "\\renewcommand", "\\providecommand"];
  var WORDS = Object.assign({
    mathMarker: "formula not rendered",
    mathTooLong: "longer than {limit} characters",
    mathTooDeep: "nested deeper than {limit} levels",
    mathDefines: "defines a macro",
  }, document.currentScript ? document.currentScript.dataset : {});

  function refusedSource(tex) {
    if (tex.length > MAX_LENGTH) return WORDS.mathTooLong.replace("{limit}", MAX_LENGTH);
    // Commands, then an escaped character (\{, \\) as one token, then braces.
    var tokens = /\\[a-zA-Z]+|\\[\s\S]|[{}]/g;
    var depth = 0, match;
    while ((match = tokens.exec(tex))) {
      var token = match[0];
      if (DEFINITIONS.includes(token)) return WORDS.mathDefines;
      if (OPENERS.includes(token) && ++depth > MAX_NESTING) return tooDeep();
      if (CLOSERS.includes(token)) depth -= 1;
    }
    return null;
  }

  function treeDepth(root) {
    var deepest = 0, stack = [[root, 0]];
    while (stack.length) {
      var item = stack.pop();
      deepest = Math.max(deepest, item[1]);
      for (var child = item[0].firstElementChild; child; child = child.nextElementSibling) stack.push([child, item[1] + 1]);
    }
    return deepest;
  }

  function tooDeep() { return WORDS.mathTooDeep.replace("{limit}", MAX_NESTING); }

  function leaveAsSource(span, reason) {
    var marker = document.createElement("small");
    marker.className = "math-marker";
    marker.textContent = WORDS.mathMarker;
    span.classList.add("math-source");
    span.title = reason;
    span.prepend(marker);
  }

  function renderFormula(span) {
    var source = span.textContent;
    var delimiter = DELIMITERS.find(function (d) {
      return source.length >= d.left.length + d.right.length && source.startsWith(d.left) && source.endsWith(d.right);
    });
    if (!delimiter) return;
    var tex = source.slice(delimiter.left.length, source.length - delimiter.right.length);
    var refusal = refusedSource(tex);
    if (refusal) return leaveAsSource(span, refusal);
    var rendered = document.createElement("span");
    try {
      window.katex.render(tex, rendered, Object.assign({ displayMode: delimiter.display }, KATEX_OPTIONS));
    } catch (error) {
      return leaveAsSource(span, String(error.message || error));
    }
    if (treeDepth(rendered) > MAX_TREE_DEPTH) return leaveAsSource(span, tooDeep());
    span.replaceChildren(rendered);
  }

  function highlight(code) {
    try {
      window.hljs.highlightElement(code);
    } catch (error) {
      console.error("highlight.js", error);  // the code stays plain text; the rest of the page renders
    }
  }

  function renderOne(el) {
    if (el.dataset.rendered === "1") return;
    el.dataset.rendered = "1";
    if (window.katex) el.querySelectorAll(".math").forEach(renderFormula);
    if (window.hljs) el.querySelectorAll("pre code").forEach(highlight);
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
