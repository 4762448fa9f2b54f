// Remesa consoles: the only script (served from the node, no inline scripts). Everything works without it; it
// only groups a typed pickup code as XXXX-XXXX-XXXX so the agent can compare it with the recipient's message.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("input[data-pickup-code]").forEach(function (input) {
    input.addEventListener("input", function () {
      var raw = input.value.toUpperCase().replace(/[^0-9A-Z]/g, "").slice(0, 12);
      var grouped = raw.replace(/(.{4})(?=.)/g, "$1-");
      if (grouped !== input.value) {
        input.value = grouped;
      }
    });
  });
});
