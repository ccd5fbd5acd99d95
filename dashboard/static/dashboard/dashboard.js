// The dashboard's behaviour. It lives in this file because the Content-Security-Policy of /admin/
// (dashboard/middleware.py) runs no inline script and no on…= attribute.
"use strict";

// A form with data-confirm="question" is sent only once the operator confirms the question.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
