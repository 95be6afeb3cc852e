// The API's interactive documentation (/api/docs): Swagger UI over /api/openapi.json.
// A file, not an inline script, so the console's CSP (script-src 'self') holds.
// The schema is fetched with the console session's cookie; "Authorize" takes a
// bearer token for trying requests out (kept in this page only).
"use strict";
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.schema,
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    validatorUrl: null, // no call to swagger.io's validator: nothing leaves the centre
  });
});
