"""The copy-paste snippets a website needs to send to the relay: analytics.js (self-hosted by the
relay) and RudderStack's JavaScript SDK v3, for one write key and the relay's public URL."""

import json

PLACEHOLDER_KEY = "YOUR_WRITE_KEY"

# Segment's official snippet, as @segment/snippet 5.2.1 renders it (min template, MIT licence) with
# `useHostForBundles`: analytics._cdn makes the bundle load its chunks and settings from the relay
# as well (the bundle finds its CDN in the script's URL only for https:// URLs). The scheme is the
# relay's own rather than the template's fixed https://, so a relay on plain HTTP works too.
# __SRC__, __URL__ and __KEY__ are JavaScript string literals, filled in by analytics_js_snippet().
ANALYTICS_JS = (
    '!function(){var i="analytics",analytics=window[i]=window[i]||[];if(!analytics.initialize)if(analytics.invoked)'
    'window.console&&console.error&&console.error("Segment snippet included twice.");else{analytics.invoked=!0;'
    'analytics.methods=["trackSubmit","trackClick","trackLink","trackForm","pageview","identify","reset","group",'
    '"track","ready","alias","debug","page","screen","once","off","on","addSourceMiddleware",'
    '"addIntegrationMiddleware","setAnonymousId","addDestinationMiddleware","register"];'
    "analytics.factory=function(e){return function(){if(window[i].initialized)return window[i][e].apply(window[i],"
    'arguments);var n=Array.prototype.slice.call(arguments);if(["track","screen","alias","group","page","identify"]'
    '.indexOf(e)>-1){var c=document.querySelector("link[rel=\'canonical\']");n.push({__t:"bpc",c:c&&c.getAttribute('
    '"href")||void 0,p:location.pathname,u:location.href,s:location.search,t:document.title,r:document.referrer})}'
    "n.unshift(e);analytics.push(n);return analytics}};for(var n=0;n<analytics.methods.length;n++){var key="
    "analytics.methods[n];analytics[key]=analytics.factory(key)}analytics.load=function(key,n){var t="
    'document.createElement("script");t.type="text/javascript";t.async=!0;'
    't.setAttribute("data-global-segment-analytics-key",i);t.src=__SRC__ + key + "/analytics.min.js";'
    'var r=document.getElementsByTagName("script")[0];r.parentNode.insertBefore(t,r);'
    "analytics._loadOptions=n};analytics._writeKey=__KEY__;analytics._cdn = __URL__;"
    'analytics.SNIPPET_VERSION="5.2.0";\nanalytics.load(__KEY__);\nanalytics.page();\n}}();'
)

RUDDERSTACK = """\
// npm install @rudderstack/analytics-js
// The "bundled" build carries the SDK's plugins: it loads nothing from RudderStack's CDN.
import { RudderAnalytics } from "@rudderstack/analytics-js/bundled";

const rudderAnalytics = new RudderAnalytics();
// configUrl: the relay answers the SDK's /sourceConfig/. Add useBeacon: true to send with
// navigator.sendBeacon (calls made as the page closes still arrive).
rudderAnalytics.load(__KEY__, __URL__, { configUrl: __URL__ });
rudderAnalytics.page();"""


def analytics_js_snippet(public_url, write_key=PLACEHOLDER_KEY):
    """The <script> for a page's <head>: analytics.js from the relay, sending to the relay."""
    code = ANALYTICS_JS.replace("__SRC__", _js_string(f"{public_url}/analytics.js/v1/"))
    return f"<script>\n  {_fill(code, public_url, write_key)}\n</script>"


def rudderstack_snippet(public_url, write_key=PLACEHOLDER_KEY):
    """JavaScript for a site that bundles @rudderstack/analytics-js: it loads and sends to the relay."""
    return _fill(RUDDERSTACK, public_url, write_key)


def rudderstack_load_call(public_url, write_key=PLACEHOLDER_KEY):
    """The load call to put in RudderStack's own CDN snippet instead of its default one."""
    return _fill("rudderanalytics.load(__KEY__, __URL__, { configUrl: __URL__ });", public_url, write_key)


def _fill(template, public_url, write_key):
    return template.replace("__URL__", _js_string(public_url)).replace("__KEY__", _js_string(write_key))


def _js_string(text):
    # JSON is a JavaScript string literal; "</" is escaped so that the text cannot end a <script>.
    return json.dumps(text).replace("</", "<\\/")
