// Taking a shift in two clicks: a shift's button opens the "take" dialog prefilled with that
// shift; its "Take this shift" button creates the override. Without JavaScript (or <dialog>)
// the shift's button opens the same form as a page of its own.
(() => {
  const dialog = document.getElementById("take-dialog");
  if (!dialog || typeof dialog.showModal !== "function") return;
  const form = dialog.querySelector("form");
  const what = document.getElementById("take-what");
  const whole = document.getElementById("take-whole");
  let shift = null;

  document.addEventListener("submit", (event) => {
    const picked = event.target;
    if (!picked.matches("form.take")) return;
    event.preventDefault();
    shift = event.submitter || picked.querySelector("button.shift");
    form.elements.start.value = picked.elements.start.value;
    form.elements.end.value = picked.elements.end.value;
    what.textContent = shift.dataset.describe || "";
    const sameRange = shift.dataset.wholeStart === picked.elements.start.value
      && shift.dataset.wholeEnd === picked.elements.end.value;
    whole.hidden = sameRange;
    dialog.showModal();
  });

  // The whole shift, not just its part on that day (a weekly shift spans seven days).
  whole.addEventListener("click", () => {
    if (!shift) return;
    form.elements.start.value = shift.dataset.wholeStart;
    form.elements.end.value = shift.dataset.wholeEnd;
    whole.hidden = true;
  });

  // Back to the shift's button when the dialog closes, for keyboard users.
  dialog.addEventListener("close", () => shift?.focus());
})();
