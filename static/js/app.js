// Behaviour that templates ask for with data- attributes; no inline script anywhere (CSP).
document.addEventListener("change", (event) => {
  const field = event.target.closest("[data-autosubmit]");
  if (field && field.form) field.form.submit();
});
