// Filters the link form's lists in place: a category list shows the chosen location's
// categories, the space list the chosen category's spaces. Without this script the
// "Show spaces" button reloads the page with the choices and the server filters instead.
(function () {
  var location = document.getElementById("location");
  var category = document.getElementById("category");
  var space = document.getElementById("space");
  if (!location || !category || !space) return;
  // Every option the server rendered, so a narrower choice can be widened again.
  var allCategories = Array.prototype.slice.call(category.options, 1);
  var allSpaces = Array.prototype.slice.call(space.options, 1);
  var categoryOf = {};
  allCategories.forEach(function (o) { categoryOf[o.value] = o.dataset.parent; });

  function keep(select, options, wanted) {
    var chosen = select.value;
    options.forEach(function (o) { if (o.parentNode) o.parentNode.removeChild(o); });
    options.filter(wanted).forEach(function (o) { select.appendChild(o); });
    select.value = Array.prototype.some.call(select.options, function (o) { return o.value === chosen; }) ? chosen : "";
  }
  function filter() {
    keep(category, allCategories, function (o) { return !location.value || o.dataset.parent === location.value; });
    keep(space, allSpaces, function (o) {
      if (category.value) return o.dataset.parent === category.value;
      return !location.value || categoryOf[o.dataset.parent] === location.value;
    });
  }
  location.addEventListener("change", filter);
  category.addEventListener("change", filter);
  filter();
})();
