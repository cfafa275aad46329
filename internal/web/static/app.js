// sot admin UI: small progressive enhancements. Every page works without
// this file except the live previews; no inline script is allowed (CSP).
"use strict";

(function () {
  function debounce(fn, ms) {
    let t;
    return function () {
      clearTimeout(t);
      t = setTimeout(fn, ms);
    };
  }

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function formatCount(n) {
    return n.toLocaleString("en-US");
  }

  // Selects that navigate or save on change (organization switcher, roles,
  // audit filter).
  document.querySelectorAll("select[data-autosubmit]").forEach(function (s) {
    s.addEventListener("change", function () {
      s.form.requestSubmit();
    });
  });

  // Forms that ask before doing something that cannot be undone.
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (ev) {
      if (!window.confirm(f.dataset.confirm)) ev.preventDefault();
    });
  });

  // Copy buttons: data-copy names the element whose text is copied.
  document.querySelectorAll("[data-copy]").forEach(function (b) {
    b.addEventListener("click", function () {
      const src = document.getElementById(b.dataset.copy);
      if (!src) return;
      const text = src.textContent;
      const done = function () {
        const label = b.textContent;
        b.textContent = "Copied";
        setTimeout(function () { b.textContent = label; }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(src) && done(); });
      } else if (fallbackCopy(src)) {
        done();
      }
    });
  });

  function fallbackCopy(src) {
    const range = document.createRange();
    range.selectNodeContents(src);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    try {
      return document.execCommand("copy");
    } catch (e) {
      return false;
    }
  }

  // Live preview of scope patterns: how many projects match now, the
  // first few, and invalid expressions next to the field.
  const patterns = document.getElementById("patterns");
  if (patterns) {
    const errors = document.getElementById("pattern-errors");
    const preview = document.getElementById("pattern-preview");
    let seq = 0;
    const update = function () {
      const mine = ++seq;
      fetch(patterns.dataset.preview + "?patterns=" + encodeURIComponent(patterns.value), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (data) {
          if (mine !== seq) return; // a newer request is on its way
          errors.replaceChildren();
          preview.replaceChildren();
          data.errors.forEach(function (e) {
            errors.appendChild(el("li", {}, "Line " + e.line + ": " + e.message));
          });
          if (data.errors.length || !patterns.value.trim()) return;
          const n = data.count;
          preview.appendChild(el("strong", { id: "pattern-count" }, formatCount(n)));
          preview.appendChild(document.createTextNode(n === 1 ? " project matches now" : " projects match now"));
          if (data.items.length) {
            preview.appendChild(document.createTextNode(": "));
            data.items.forEach(function (p, i) {
              if (i) preview.appendChild(document.createTextNode(", "));
              preview.appendChild(el("code", {}, p.key));
            });
            if (n > data.items.length) preview.appendChild(document.createTextNode(", …"));
          }
          preview.appendChild(document.createTextNode(". Projects created later that match are covered too."));
        })
        .catch(function () {});
    };
    patterns.addEventListener("input", debounce(update, 250));
    if (patterns.value.trim()) update();
  }

  // Project search of the "selected projects" mode. Checked projects stay
  // selected while the search changes; "select all N matching" sends the
  // query, which the server resolves to keys.
  const q = document.getElementById("project-q");
  if (q) {
    const results = document.getElementById("project-results");
    const selected = document.getElementById("project-selected");
    const count = document.getElementById("match-count");
    const note = document.getElementById("results-note");
    let seq = 0;
    const keep = function () {
      results.querySelectorAll("input[name=project]:checked").forEach(function (c) {
        const label = el("label", { class: "check chip-check" });
        const box = el("input", { type: "checkbox", name: "project", value: c.value });
        box.checked = true;
        label.appendChild(box);
        label.appendChild(document.createTextNode(" " + c.value));
        selected.appendChild(label);
      });
    };
    const search = function () {
      const mine = ++seq;
      fetch(q.dataset.preview + "?q=" + encodeURIComponent(q.value.trim()), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (data) {
          if (mine !== seq) return;
          keep();
          const chosen = new Set();
          selected.querySelectorAll("input:checked").forEach(function (c) { chosen.add(c.value); });
          results.replaceChildren();
          data.items.forEach(function (p) {
            if (chosen.has(p.key)) return;
            const label = el("label", { class: "check" });
            label.appendChild(el("input", { type: "checkbox", name: "project", value: p.key }));
            label.appendChild(document.createTextNode(" "));
            label.appendChild(el("code", {}, p.key));
            label.appendChild(document.createTextNode(" "));
            label.appendChild(el("span", { class: "muted" }, p.name));
            results.appendChild(label);
          });
          count.textContent = formatCount(data.count);
          note.textContent = data.count > data.items.length
            ? "Showing the first " + data.items.length + "; refine the search, or select all matching."
            : "";
        })
        .catch(function () {});
    };
    q.addEventListener("input", debounce(search, 250));
    q.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") {
        ev.preventDefault(); // search, do not submit the token form
        search();
      }
    });
  }
})();
