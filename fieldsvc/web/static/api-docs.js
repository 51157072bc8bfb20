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
})();
