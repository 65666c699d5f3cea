// Typeset the math spans of pymdownx.arithmatex (\( \) inline, \[ \] display) with the KaTeX that
// the site bundles (site/assets/katex/), on every page load (material's document$).
document$.subscribe(function () {
  document.querySelectorAll(".arithmatex").forEach(function (el) {
    renderMathInElement(el, {
      delimiters: [
        {left: "\\(", right: "\\)", display: false},
        {left: "\\[", right: "\\]", display: true}
      ],
      throwOnError: false
    });
  });
});
