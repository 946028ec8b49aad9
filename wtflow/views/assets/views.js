// wtflow views: opening and closing the tree, in the report and in `wtflow ui`.
(function () {
  "use strict";

  function openTo(element) {
    for (let e = element; e; e = e.parentElement) {
      if (e.tagName === "DETAILS") e.open = true;
    }
  }

  function showTarget() {
    const id = decodeURIComponent(location.hash.slice(1));
    const target = id && document.getElementById(id);
    if (target) {
      openTo(target);
      target.scrollIntoView({ block: "center" });
    }
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-tree]");
    if (!button) return;
    const nodes = document.querySelectorAll("details.node");
    const action = button.dataset.tree;
    if (action === "failures") {
      nodes.forEach(function (d) {
        if (d.matches(".s-failed, .s-timed_out, .s-crashed, .s-cancelled")) openTo(d);
      });
      return;
    }
    nodes.forEach(function (d) { d.open = action === "expand"; });
    if (action === "collapse" && nodes.length) nodes[0].open = true;
  });

  window.addEventListener("hashchange", showTarget);
  showTarget();
})();
