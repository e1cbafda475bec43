/* Boomerang web push service worker for store __BOOMERANG_STORE__.
   Host a file at your site's root, /boomerang-sw.js, containing only:
     importScripts("<this file's URL>");
   (a service worker must come from your own origin; importScripts may load it from Boomerang).
   Shows each notification (title, body, icon, image), opens its link on click, and keeps the
   subscription alive when the browser renews it. No third-party requests. */
"use strict";
var BOOMERANG_STORE = __BOOMERANG_STORE_JSON__;
var BOOMERANG_VAPID_KEY = __BOOMERANG_VAPID_KEY_JSON__;
var BOOMERANG_CONFIG = "/__boomerang/webpush-config"; /* written by the subscribe helper (Cache Storage) */

function boomerangHttps(url) {
  return typeof url === "string" && /^https:\/\//i.test(url) ? url : undefined;
}

self.addEventListener("push", function (event) {
  var n = {};
  try { n = event.data ? event.data.json() : {}; } catch (e) { n = { body: event.data ? event.data.text() : "" }; }
  var data = n.data || {};
  var options = {
    body: n.body || "",
    icon: boomerangHttps(n.icon),
    image: boomerangHttps(n.image),
    data: { url: boomerangHttps(n.url), journey: data.journey, step: data.step },
    /* one notification per journey step: a re-sent step replaces, never stacks */
    tag: data.journey ? "boomerang:" + data.journey + ":" + data.step : undefined
  };
  event.waitUntil(self.registration.showNotification(n.title || "", options));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = event.notification.data && event.notification.data.url;
  if (!url) return;
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (open) {
      for (var i = 0; i < open.length; i++) {
        if (open[i].url === url && "focus" in open[i]) return open[i].focus();
      }
      return self.clients.openWindow(url);
    })
  );
});

function boomerangTrack(config, event, properties) {
  var call = { type: "track", event: event, properties: properties, writeKey: config.writeKey,
               messageId: "wp-" + Date.now() + "-" + Math.random().toString(36).slice(2) };
  if (config.userId) call.userId = config.userId; else call.anonymousId = config.anonymousId;
  return fetch(config.api + "/v1/track", { method: "POST", mode: "no-cors", keepalive: true,
    headers: { "Content-Type": "text/plain" }, body: JSON.stringify(call) });
}

function boomerangKey() {
  var s = BOOMERANG_VAPID_KEY.replace(/-/g, "+").replace(/_/g, "/");
  var raw = atob(s + "===".slice((s.length + 3) % 4));
  var out = new Uint8Array(raw.length);
  for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

/* The browser renewed (or dropped) the subscription: tell Boomerang, so messages follow it. */
self.addEventListener("pushsubscriptionchange", function (event) {
  event.waitUntil(
    caches.open("boomerang").then(function (c) { return c.match(BOOMERANG_CONFIG); })
      .then(function (r) { return r ? r.json() : null; })
      .then(function (config) {
        if (!config) return;
        var old = event.oldSubscription;
        var gone = old ? boomerangTrack(config, "Web Push Unsubscribed",
          { endpoint: old.endpoint, reason: "pushsubscriptionchange" }) : Promise.resolve();
        var renewed = event.newSubscription ? Promise.resolve(event.newSubscription)
          : self.registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: boomerangKey() });
        return gone.then(function () { return renewed; }).then(function (sub) {
          var json = sub.toJSON();
          json.user_agent = navigator.userAgent;
          json.consent_source = "pushsubscriptionchange";
          json.consent_text = config.consentText;
          return boomerangTrack(config, "Web Push Subscribed", json);
        });
      })
  );
});
