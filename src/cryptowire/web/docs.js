/* /docs: Swagger UI (vendored, web/vendor/) on this hub's /openapi.json. Nothing is loaded
 * from elsewhere: no validator badge, no remote spec, no analytics. */
(() => {
  'use strict';
  window.ui = window.SwaggerUIBundle({
    url: '/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    validatorUrl: null,
    tryItOutEnabled: false,
    displayRequestDuration: true,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
  });
})();
