// The console's only script (progressive enhancement: every page works without it).
// - Times: each <time datetime> is shown in the viewer's time zone, naming the zone; UTC stays in its title
//   (on hover). A <time data-utc> (an expiry set as a UTC day) stays as written, in UTC.
// - Copy buttons: data-copy="<id>" copies that element's text.
// - Forms with data-confirm ask before they are sent.
// - Price form: each <output data-charged="<field>"> shows that base price × the markup as it is typed,
//   exactly (decimal arithmetic, as billing-svc computes it); a field with data-star-warning shows that
//   warning while it holds "*".
// - The usage chart, scrolling inside its region on a narrow screen, starts scrolled to its latest days.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("div.chart").forEach(function (region) {
    region.scrollLeft = region.scrollWidth;
  });
  document.querySelectorAll("time[datetime]:not([data-utc])").forEach(function (node) {
    var at = new Date(node.getAttribute("datetime"));
    if (!isNaN(at.getTime())) {
      node.textContent = at.toLocaleString(undefined, {
        year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
        timeZoneName: "short"
      });
    }
  });
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var source = document.getElementById(button.getAttribute("data-copy"));
      if (!source || !navigator.clipboard) { return; }
      navigator.clipboard.writeText(source.textContent.trim()).then(function () {
        button.textContent = "Copied";
      });
    });
  });
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); return; }
      // Answered here: the server then acts without asking again on a page of its own.
      if (!form.querySelector('input[name="confirmed"]')) {
        var answer = document.createElement("input");
        answer.type = "hidden";
        answer.name = "confirmed";
        answer.value = "yes";
        form.appendChild(answer);
      }
    });
  });
  document.querySelectorAll("output[data-charged]").forEach(function (output) {
    var base = document.getElementById(output.getAttribute("data-charged"));
    var markup = document.getElementById("markup");
    if (!base || !markup) { return; }
    var update = function () {
      var factor = markup.value.trim() === "" ? markup.getAttribute("data-default") : markup.value;
      var product = times(decimal(base.value), decimal(factor));
      output.textContent = product === null ? "—" : product;
    };
    base.addEventListener("input", update);
    markup.addEventListener("input", update);
    update();
  });
  document.querySelectorAll("input[data-star-warning]").forEach(function (field) {
    var warning = document.getElementById(field.getAttribute("data-star-warning"));
    if (!warning) { return; }
    var update = function () { warning.hidden = field.value.trim() !== "*"; };
    field.addEventListener("input", update);
    update();
  });
});

// A decimal as typed ("0.002", "1.5") as its digits and scale, or null.
function decimal(text) {
  var match = /^\s*([0-9]+)(?:\.([0-9]+))?\s*$/.exec(text || "");
  if (!match) { return null; }
  var fraction = match[2] || "";
  return { digits: BigInt(match[1] + fraction), scale: fraction.length };
}

// The exact product of two decimals without trailing zeros ("0.002" × "2" = "0.004", "2" × "1.5" = "3"),
// written as billing-svc writes a charged price; null when either is not a decimal.
function times(a, b) {
  if (a === null || b === null) { return null; }
  var scale = a.scale + b.scale;
  var text = (a.digits * b.digits).toString();
  if (scale === 0) { return text; }
  text = text.padStart(scale + 1, "0");
  return (text.slice(0, -scale) + "." + text.slice(-scale)).replace(/0+$/, "").replace(/\.$/, "");
}
