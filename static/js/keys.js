// "?" anywhere opens the list of every key (templates/_key_help.html); on the pair list j/k mark the next and
// previous row, o or Enter opens it, ] and [ turn the page, / goes to the search box (as in Gmail). The review
// queue's own keys are in review.js; a key typed into a text field is text, not a command.
(() => {
  function typing(element) {
    if (!element) return false;
    if (element.tagName === "TEXTAREA" || element.tagName === "SELECT" || element.isContentEditable) return true;
    return element.tagName === "INPUT" && !["radio", "checkbox", "hidden", "submit", "button"].includes(element.type);
  }

  function toggleHelp() {
    const dialog = document.getElementById("key-help");
    if (!dialog) return;
    if (dialog.open) dialog.close();
    else dialog.showModal();
  }

  function rows() {
    return Array.from(document.querySelectorAll("#pair-table tbody tr[data-pair]"));
  }

  function mark(step) {
    const all = rows();
    if (!all.length) return false;
    const current = all.findIndex((row) => row.classList.contains("current"));
    const next = current < 0 ? (step > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, current + step));
    all.forEach((row) => row.classList.remove("current"));
    all[next].classList.add("current");
    all[next].setAttribute("aria-current", "true");
    all[next].scrollIntoView({ block: "nearest" });
    return true;
  }

  function follow(selector) {
    const link = document.querySelector(selector);
    if (link) link.click();
    return Boolean(link);
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(document.activeElement)) return;
    if (event.key === "?") {
      toggleHelp();
      event.preventDefault();
      return;
    }
    if (!document.getElementById("pair-table") || document.getElementById("review-item")) return;
    let handled = true;
    if (event.key === "j") handled = mark(1);
    else if (event.key === "k") handled = mark(-1);
    else if (event.key === "o" || event.key === "Enter") {
      const row = document.querySelector("#pair-table tr.current");
      handled = Boolean(row) && follow("#pair-table tr.current a[href]");
    } else if (event.key === "]") handled = follow("#next-page");
    else if (event.key === "[") handled = follow("#previous-page");
    else if (event.key === "/") {
      const box = document.querySelector("#pair-filter input[name=q]");
      if (box) box.focus();
      handled = Boolean(box);
    } else handled = false;
    if (handled) event.preventDefault();
  });
})();
document.addEventListener("click", (event) => {
  if (!event.target.closest("[data-key-help]")) return;
  const dialog = document.getElementById("key-help");
  if (dialog && !dialog.open) dialog.showModal();
});
