// Tabs over sections of a page (<nav data-tabs> of links to "#id", panels with data-tab-panel): one panel shows
// at a time, chosen by the URL's #fragment (so a link, a reload and the back button keep it), the first by
// default; an anchor inside a panel (#pair-building) opens the panel that holds it. Without JavaScript every
// panel shows, one under the other.
(() => {
  function setUp(nav) {
    const links = Array.from(nav.querySelectorAll("a[data-tab]"));
    const panels = links.map((link) => document.getElementById(link.dataset.tab)).filter(Boolean);
    if (!panels.length) return;

    function show(hash) {
      const target = hash ? document.getElementById(hash.slice(1)) : null;
      const panel = (target && panels.find((p) => p === target || p.contains(target))) || panels[0];
      panels.forEach((p) => { p.hidden = p !== panel; });
      links.forEach((link) => {
        const current = link.dataset.tab === panel.id;
        link.classList.toggle("current", current);
        if (current) link.setAttribute("aria-current", "page");
        else link.removeAttribute("aria-current");
      });
      if (target && target !== panel) target.scrollIntoView();
    }

    nav.classList.add("tabs-on");
    show(window.location.hash);
    window.addEventListener("hashchange", () => show(window.location.hash));
  }

  document.addEventListener("DOMContentLoaded", () => document.querySelectorAll("[data-tabs]").forEach(setUp));
})();
