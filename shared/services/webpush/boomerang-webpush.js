/* Boomerang web push subscribe helper for store __BOOMERANG_STORE__. No third-party requests.
   <script src="<this URL>" defer></script>, then from a click handler (browsers ask for the
   notification permission only on a user gesture):
     Boomerang.webPush.subscribe({ writeKey: "...", userId: "..." or anonymousId: "...",
       consentText: "the words shown next to your button" })
   resolves to the PushSubscription, or null when the visitor did not allow notifications.
   Boomerang.webPush.unsubscribe({...same...}) withdraws it. */
(function () {
  "use strict";
  var STORE = __BOOMERANG_STORE_JSON__;
  var KEY = __BOOMERANG_VAPID_KEY_JSON__;
  var script = document.currentScript;
  var API = script ? script.src.replace(/\/v1\/webpush\/.*$/, "") : "";
  var CONFIG = "/__boomerang/webpush-config";

  function key() {
    var s = KEY.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(s + "===".slice((s.length + 3) % 4));
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }
  function same(a, b) {
    if (!a || a.byteLength !== b.byteLength) return false;
    var x = new Uint8Array(a);
    for (var i = 0; i < x.length; i++) if (x[i] !== b[i]) return false;
    return true;
  }
  function check(o) {
    if (!o || !o.writeKey) throw new Error("Boomerang.webPush: writeKey is required");
    if (!o.userId && !o.anonymousId) throw new Error("Boomerang.webPush: userId or anonymousId is required");
  }
  function track(o, event, properties) {
    var call = { type: "track", event: event, properties: properties, writeKey: o.writeKey,
                 messageId: "wp-" + Date.now() + "-" + Math.random().toString(36).slice(2) };
    if (o.userId) call.userId = o.userId; else call.anonymousId = o.anonymousId;
    /* text/plain keeps it a simple request (no CORS preflight); the key travels in the body */
    return fetch(API + "/v1/track", { method: "POST", mode: "no-cors", keepalive: true,
      headers: { "Content-Type": "text/plain" }, body: JSON.stringify(call) });
  }
  function supported() {
    return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
  }
  function subscribe(o) {
    check(o);
    if (!supported()) return Promise.reject(new Error("this browser has no web push"));
    var config = { api: API, writeKey: o.writeKey, userId: o.userId, anonymousId: o.anonymousId,
                   consentText: o.consentText || "" };
    return Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") return null;
      return navigator.serviceWorker.register(o.serviceWorker || "/boomerang-sw.js")
        .then(function () { return navigator.serviceWorker.ready; })
        .then(function (reg) {
          return caches.open("boomerang")
            .then(function (c) { return c.put(CONFIG, new Response(JSON.stringify(config))); })
            .then(function () { return reg.pushManager.getSubscription(); })
            .then(function (sub) {
              /* a subscription made with another key (another sender) cannot carry ours */
              if (sub && !same(sub.options.applicationServerKey, key())) {
                return sub.unsubscribe().then(function () { return null; });
              }
              return sub;
            })
            .then(function (sub) {
              return sub || reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key() });
            });
        })
        .then(function (sub) {
          var json = sub.toJSON();
          json.user_agent = navigator.userAgent;
          json.consent_text = o.consentText || undefined;
          json.consent_source = location.origin + location.pathname;
          return track(o, "Web Push Subscribed", json).then(function () { return sub; });
        });
    });
  }
  function unsubscribe(o) {
    check(o);
    if (!supported()) return Promise.resolve(false);
    return navigator.serviceWorker.getRegistration(o.serviceWorker || "/boomerang-sw.js").then(function (reg) {
      return reg ? reg.pushManager.getSubscription() : null;
    }).then(function (sub) {
      if (!sub) return false;
      var endpoint = sub.endpoint;
      return sub.unsubscribe().then(function () {
        return track(o, "Web Push Unsubscribed", { endpoint: endpoint, reason: "unsubscribed on the site" });
      }).then(function () { return true; });
    });
  }
  window.Boomerang = window.Boomerang || {};
  window.Boomerang.webPush = { store: STORE, publicKey: KEY, supported: supported,
                               subscribe: subscribe, unsubscribe: unsubscribe };
})();
