// The review queue's keyboard: 1-4 verdict, c/p toggles, Enter submit, s skip, u undo, j/k next/previous (as in
// Gmail: j goes on, k goes back). The "?" overlay (keys.js, templates/_key_help.html) lists them.
// Every key acts on the forms and links of #review-item, so the page behaves the same with the mouse,
// and without JavaScript the forms post normally.
(() => {
  // Keys wait until htmx has processed the page (before that, Enter would post the form natively, a full page
  // load); <html data-review-keys="ready"> says they act. Items are swapped with settle:0ms so that htmx
  // processes each new item in the same task that inserts it, leaving no moment where its form is inert.
  let ready = false;
  document.addEventListener("htmx:load", () => {
    ready = true;
    document.documentElement.dataset.reviewKeys = "ready";
  });
  // Keys also wait while the pair itself is being replaced (not while the progress line reloads).
  // (afterRequest of a swapped-out form is re-dispatched on an ancestor, so the request is matched by its xhr.)
  let pending = null;
  const inItem = (event) => Boolean(event.detail.elt && event.detail.elt.closest("#review-item"));
  document.addEventListener("htmx:beforeRequest", (event) => { if (inItem(event)) pending = event.detail.xhr; });
  document.addEventListener("htmx:afterRequest", (event) => { if (event.detail.xhr === pending) pending = null; });
  // A refused verdict (400: no verdict chosen; 409: the pair went to someone else) comes back as the
  // item with its message: show it instead of htmx's default of ignoring error responses.
  document.addEventListener("htmx:beforeSwap", (event) => {
    if ([400, 409].includes(event.detail.xhr.status) && inItem(event)) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  function typing(element) {
    if (!element) return false;
    if (element.tagName === "TEXTAREA" || element.isContentEditable) return true;
    return element.tagName === "INPUT" && !["radio", "checkbox", "hidden", "submit", "button"].includes(element.type);
  }

  function click(root, selector) {
    const target = root.querySelector(selector);
    if (target) target.click();
    return Boolean(target);
  }

  document.addEventListener("keydown", (event) => {
    const root = document.getElementById("review-item");
    if (!root || event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(document.activeElement)) {
      if (event.key === "Escape") document.activeElement.blur();
      return;
    }
    const form = root.querySelector("#verdict-form");
    const key = event.key;
    let handled = true;
    if ((pending || !ready) && key !== "Escape") {
      event.preventDefault();
      return;
    }
    if (form && ["1", "2", "3", "4"].includes(key)) {
      const radio = form.querySelector(`input[name=verdict][data-key="${key}"]`);
      if (radio) radio.checked = true;
    } else if (form && (key === "c" || key === "p")) {
      const box = form.querySelector(`input[type=checkbox][data-key="${key}"]`);
      if (box) box.checked = !box.checked;
    } else if (form && key === "Enter") {
      form.requestSubmit();
    } else if (key === "s") {
      handled = click(root, "#skip-form button");
    } else if (key === "u") {
      handled = click(root, "#undo-form button");
    } else if (key === "j") {
      handled = click(root, "#review-next");
    } else if (key === "k") {
      handled = click(root, "#review-prev");
    } else {
      handled = false;
    }
    if (handled) event.preventDefault();
  });
})();
