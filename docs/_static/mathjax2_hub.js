// The widget embedder (@jupyter-widgets/html-manager 1) typesets the contents of Output widgets by calling MathJax 2's
// MathJax.Hub.Queue; this site serves MathJax 3, which has no Hub, so every saved Output widget threw a TypeError.
// Whatever object window.MathJax holds (first the configuration, then MathJax 3 itself), reading it gives one with a
// Hub.Queue that asks MathJax 3 to typeset the page.
(function () {
  var mj;
  function withHub(v) {
    if (v && typeof v === 'object' && !v.Hub)
      v.Hub = {Queue: function () { if (mj && mj.typesetPromise) mj.typesetPromise(); }};
    return v;
  }
  Object.defineProperty(window, 'MathJax', {configurable: true, get: function () { return withHub(mj); },
                                            set: function (v) { mj = v; }});
})();
