// moltbot SaaS dashboard: a few enhancements; every page works without them.
document.addEventListener('submit', function (e) {
  var q = e.target.getAttribute('data-confirm');
  if (q && !window.confirm(q)) e.preventDefault();
});
document.addEventListener('change', function (e) {
  if (e.target.hasAttribute('data-autosubmit') && e.target.form) e.target.form.submit();
});
document.addEventListener('click', function (e) {
  var t = e.target;
  if (t.hasAttribute('data-copy')) {
    var field = document.getElementById(t.getAttribute('data-copy'));
    field.select();
    if (navigator.clipboard) navigator.clipboard.writeText(field.value);
    t.textContent = 'Copied';
  } else if (t.hasAttribute('data-back') && window.history.length > 1) {
    e.preventDefault();
    window.history.back();
  }
});
