/* Boomerang signup form and welcome pop-up. Embed:
   <script src="https://<api>/v1/forms/boomerang.js" data-key="pk_..." async></script>
   No third-party requests: it talks only to the Boomerang API it was loaded from. */
(function () {
  "use strict";
  var me = document.currentScript;
  if (!me || !me.getAttribute("data-key") || window.__boomerangForm) return;
  window.__boomerangForm = 1;
  var key = me.getAttribute("data-key");
  var api = me.src.replace(/\/v1\/forms\/boomerang\.js(\?.*)?$/, "");
  var base = api + "/v1/forms/" + encodeURIComponent(key);
  var store = window.localStorage;

  function get(k) { try { return store.getItem(k); } catch (e) { return null; } }
  function put(k, v) { try { store.setItem(k, v); } catch (e) { /* private mode: shown again */ } }
  function cookie(name) {
    var m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    if (!m) return null;
    try { return decodeURIComponent(m[1]).replace(/^"|"$/g, "") || null; } catch (e) { return null; }
  }
  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (c) {
      var r = Math.random() * 16 | 0; return (c === "x" ? r : (r & 3 | 8)).toString(16);
    });
  }
  // the store's analytics id (Segment, RudderStack unencrypted) so earlier browsing joins the profile
  function anonymousId() {
    var id = cookie("ajs_anonymous_id") || cookie("rl_anonymous_id");
    if (id && !/^RS_ENC/.test(id)) return id;
    id = get("boomerang_aid");
    if (!id) { id = uuid(); put("boomerang_aid", id); }
    return id;
  }
  function glob(p, path) {
    return p === "*" || new RegExp("^" + p.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*") + "$").test(path);
  }
  function el(tag, attrs, kids) {
    var n = document.createElement(tag);
    for (var a in attrs) if (attrs[a] != null && attrs[a] !== false) n.setAttribute(a, attrs[a] === true ? "" : attrs[a]);
    (kids || []).forEach(function (k) { n.appendChild(typeof k === "string" ? document.createTextNode(k) : k); });
    return n;
  }

  fetch(base + "/config", { credentials: "omit" }).then(function (r) { return r.ok ? r.json() : null; }).then(function (cfg) {
    if (!cfg) return;
    var show = cfg.show, seenKey = "boomerang_form_" + cfg.id, seen = +get(seenKey) || 0;
    if (get(seenKey + "_done")) return;  // signed up: never asked again
    var path = location.pathname;
    if (!show.pages.some(function (p) { return glob(p, path); }) || show.exclude.some(function (p) { return glob(p, path); })) return;
    if (seen && (show.once_per_visitor || (show.again_after_days && Date.now() - seen < show.again_after_days * 864e5))) return;
    var opened = false;
    function open() { if (!opened) { opened = true; popup(cfg, seenKey); } }
    setTimeout(open, show.delay_seconds * 1000);
    if (show.exit_intent) document.addEventListener("mouseout", function (e) { if (!e.relatedTarget && e.clientY <= 0) open(); });
  }).catch(function () { /* no form today: never break the store's page */ });

  function popup(cfg, seenKey) {
    var lang = (document.documentElement.lang || navigator.language || "").toLowerCase();
    var locale = cfg.texts[lang] ? lang : cfg.texts[lang.split("-")[0]] ? lang.split("-")[0] : cfg.default_locale;
    var t = cfg.texts[locale], c = cfg.colours, labels = t.labels || {};
    function label(name, fallback) { return labels[name] || fallback; }
    var previous = document.activeElement, submissionId = uuid(), busy = false;
    var css = el("style", {}, [
      ".bmr-o{position:fixed;inset:0;background:rgba(0,0,0,.45);display:flex;align-items:flex-end;justify-content:center;z-index:2147483000}" +
      ".bmr-d{box-sizing:border-box;width:100%;max-height:100%;overflow:auto;background:" + c.background + ";color:" + c.text + ";padding:1.25rem;border-radius:12px 12px 0 0;font:16px/1.4 system-ui,sans-serif}" +
      "@media(min-width:600px){.bmr-o{align-items:center}.bmr-d{max-width:420px;border-radius:12px}}" +
      ".bmr-d h2{margin:0 2rem .5rem 0;font-size:1.3rem}.bmr-d label{display:block;margin:.6rem 0 .2rem}" +
      ".bmr-d input:not([type=checkbox]),.bmr-d select{box-sizing:border-box;width:100%;padding:.6rem;font:inherit;border:1px solid #767676;border-radius:6px}" +
      ".bmr-d fieldset{border:0;padding:0;margin:.6rem 0}.bmr-d .bmr-c{display:flex;gap:.5rem;align-items:flex-start}.bmr-d .bmr-c input{margin-top:.3rem}" +
      ".bmr-d .bmr-c label{display:inline;margin:0}.bmr-d button{font:inherit;cursor:pointer}" +
      ".bmr-s{width:100%;margin-top:1rem;padding:.75rem;border:0;border-radius:6px;background:" + c.accent + ";color:" + c.accent_text + "}" +
      ".bmr-x{position:absolute;top:.5rem;right:.5rem;width:2.75rem;height:2.75rem;border:0;background:none;color:inherit;font-size:1.5rem}" +
      ".bmr-e{color:#b00020;font-size:.9rem;margin:.2rem 0}.bmr-d :focus-visible{outline:3px solid " + c.accent + ";outline-offset:2px}" +
      ".bmr-h{position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden}"
    ]);
    var fields = cfg.fields, inputs = {}, form = el("form", { novalidate: true });
    var kinds = { email: ["email", "email"], phone: ["tel", "tel"], first_name: ["text", "given-name"], birthday: ["date", "bday"] };
    function errorSlot(name) { return el("p", { id: "bmr-e-" + name, "class": "bmr-e", hidden: true }); }
    ["email", "phone", "first_name", "gender", "birthday", "interests"].forEach(function (name) {
      if (!fields[name]) return;
      var req = fields[name] === "required", id = "bmr-" + name, text = label(name, name.replace("_", " ")) + (req ? " *" : "");
      if (name === "interests") {
        var set = el("fieldset", { id: id }, [el("legend", {}, [text])]);
        cfg.interests.forEach(function (v) {
          var box = el("input", { type: "checkbox", id: id + "-" + v, value: v, name: "interests" });
          set.appendChild(el("div", { "class": "bmr-c" }, [box, el("label", { "for": id + "-" + v }, [label(v, v)])]));
        });
        inputs[name] = set; form.appendChild(set);
      } else if (name === "gender") {
        var sel = el("select", { id: id, name: name, required: req }, [el("option", { value: "" }, ["—"])]);
        cfg.genders.forEach(function (v) { sel.appendChild(el("option", { value: v }, [label(v, v)])); });
        inputs[name] = sel; form.appendChild(el("label", { "for": id }, [text])); form.appendChild(sel);
      } else {
        var input = el("input", { id: id, name: name, type: kinds[name][0], autocomplete: kinds[name][1], required: req });
        inputs[name] = input; form.appendChild(el("label", { "for": id }, [text])); form.appendChild(input);
      }
      form.appendChild(errorSlot(name));
    });
    Object.keys(cfg.consent).forEach(function (ch) {
      var box = el("input", { type: "checkbox", id: "bmr-consent-" + ch, name: "consent-" + ch });
      inputs["consent." + ch] = box;
      form.appendChild(el("div", { "class": "bmr-c" }, [box, el("label", { "for": box.id }, [cfg.consent[ch][locale]])]));
      form.appendChild(errorSlot("consent." + ch));
    });
    var trap = el("input", { name: "website", tabindex: "-1", autocomplete: "off", id: "bmr-website" });
    form.appendChild(el("div", { "class": "bmr-h", "aria-hidden": "true" }, [el("label", { "for": "bmr-website" }, ["Website"]), trap]));
    var general = errorSlot("form");
    form.appendChild(general);
    form.appendChild(el("button", { type: "submit", "class": "bmr-s" }, [t.submit]));
    var close = el("button", { type: "button", "class": "bmr-x", "aria-label": t.close }, ["\u00d7"]);
    var intro = [el("h2", { id: "bmr-title" }, [t.title])];
    if (t.body) intro.push(el("p", { id: "bmr-body" }, [t.body]));
    if (t.offer) intro.push(el("p", {}, [el("strong", {}, [t.offer])]));
    var dialog = el("div", { "class": "bmr-d", role: "dialog", "aria-modal": "true", "aria-labelledby": "bmr-title", "aria-describedby": t.body ? "bmr-body" : null, style: "position:relative" }, intro.concat([form, close]));
    var overlay = el("div", { "class": "bmr-o", id: "boomerang-form" }, [css, dialog]);

    function focusables() {
      return [].filter.call(dialog.querySelectorAll("button,input,select,textarea,a[href],[tabindex]"), function (n) {
        return n.tabIndex >= 0 && !n.disabled && n.offsetParent !== null;
      });
    }
    function dismiss() {
      put(seenKey, String(Date.now()));
      document.removeEventListener("keydown", keys, true);
      overlay.remove();
      if (previous && previous.focus) previous.focus();
    }
    function keys(e) {
      if (e.key === "Escape") { e.preventDefault(); dismiss(); return; }
      if (e.key !== "Tab") return;
      var f = focusables(), first = f[0], last = f[f.length - 1];
      if (!dialog.contains(document.activeElement)) { e.preventDefault(); first.focus(); }
      else if (e.shiftKey && document.activeElement === first) { e.preventDefault(); last.focus(); }
      else if (!e.shiftKey && document.activeElement === last) { e.preventDefault(); first.focus(); }
    }
    function showErrors(errors) {
      [].forEach.call(form.querySelectorAll(".bmr-e"), function (p) { p.hidden = true; p.textContent = ""; });
      [].forEach.call(form.querySelectorAll("[aria-invalid]"), function (n) { n.removeAttribute("aria-invalid"); n.removeAttribute("aria-describedby"); });
      var firstBad = null;
      errors.forEach(function (err) {
        var slot = form.querySelector("#bmr-e-" + CSS.escape(err.field)) || general, input = inputs[err.field];
        slot.textContent = (slot.textContent ? slot.textContent + " " : "") + label(err.field, err.field.replace("_", " ")) + ": " + err.message;
        slot.hidden = false;
        if (input) { input.setAttribute("aria-invalid", "true"); input.setAttribute("aria-describedby", slot.id); firstBad = firstBad || input; }
      });
      general.setAttribute("role", "alert");
      if (firstBad) firstBad.focus(); else { general.tabIndex = -1; general.focus(); }
    }
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (busy) return;
      busy = true;
      var body = { locale: locale, page_url: location.href, anonymous_id: anonymousId(), submission_id: submissionId, consent: {}, website: trap.value };
      Object.keys(fields).forEach(function (name) {
        if (name === "interests") body.interests = [].filter.call(inputs.interests.querySelectorAll("input"), function (b) { return b.checked; }).map(function (b) { return b.value; });
        else body[name] = inputs[name].value.trim();
      });
      Object.keys(cfg.consent).forEach(function (ch) { body.consent[ch] = inputs["consent." + ch].checked; });
      // text/plain keeps it a "simple" CORS request: no preflight round trip
      fetch(base + "/submit", { method: "POST", credentials: "omit", headers: { "Content-Type": "text/plain;charset=UTF-8" }, body: JSON.stringify(body) })
        .then(function (r) { return r.json().then(function (j) { return [r.status, j]; }); })
        .then(function (res) {
          busy = false;
          if (res[0] === 200) {
            put(seenKey + "_done", "1");
            var done = el("p", { role: "status", tabindex: "-1", id: "bmr-done" }, [res[1].status === "pending_confirmation" ? t.confirm : t.thanks]);
            form.replaceWith(done); done.focus();
          } else showErrors(res[1].errors || [{ field: "form", message: res[1].message || "please try again" }]);
        })
        .catch(function () { busy = false; showErrors([{ field: "form", message: "no connection; please try again" }]); });
    });
    close.addEventListener("click", dismiss);
    overlay.addEventListener("click", function (e) { if (e.target === overlay) dismiss(); });
    document.addEventListener("keydown", keys, true);
    document.body.appendChild(overlay);
    (focusables()[0] || dialog).focus();
    put(seenKey, String(Date.now()));  // shown once per visitor, even if the page is left open
  }
})();
