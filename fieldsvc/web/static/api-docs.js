// Start Swagger UI on /api/docs. An external file, because the CSP forbids inline scripts.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    domNode: root,
    deepLinking: true,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    // Validation would call a third-party validator service; everything stays on fieldsvc.
    validatorUrl: null,
    persistAuthorization: false
  });

  // "Use my session": a short-lived bearer token for the logged-in user (the POST carries the
  // page's CSRF token), put where "Authorize" would put it.
  var button = document.getElementById("use-session");
  if (!button) return;
  var status = document.getElementById("use-session-status");
  button.addEventListener("click", function () {
    button.disabled = true;
    fetch(button.getAttribute("data-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Accept": "application/json",
        "X-CSRFToken": document.querySelector('meta[name="csrf-token"]').getAttribute("content")
      }
    }).then(function (response) {
      if (!response.ok) throw new Error(String(response.status));
      return response.json();
    }).then(function (body) {
      window.ui.preauthorizeApiKey("bearer", body.token);
      status.textContent = button.getAttribute("data-done").replace("{time}", body.expires_at.slice(11, 16));
    }).catch(function () {
      status.textContent = button.getAttribute("data-failed");
    }).then(function () { button.disabled = false; });
  });
})();
