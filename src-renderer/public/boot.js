/*
 * Headless mode only, and before anything else: takes the token out of the
 * address bar, then opens the WebSocket to the
 * core and asks for the embedded broker's live statistics (the first screen),
 * so the first sample is on its way while the app's code downloads, compiles
 * and mounts. The API client (src/api/client.ts) adopts this socket and what
 * it received. In the desktop app the preload's bridge exists and this does
 * nothing. A plain script (not a module) so that it runs before the app.
 */
(function () {
  'use strict';
  // Opened from the URL headless mode printed: the cookie is set, the token leaves the address bar.
  if (/[?&]token=/.test(location.search)) {
    var params = new URLSearchParams(location.search);
    params.delete('token');
    var query = params.toString();
    history.replaceState(history.state, '', location.pathname + (query ? '?' + query : '') + location.hash);
  }
  if (window.brokerdeck || typeof WebSocket !== 'function') return;
  var ws;
  try {
    ws = new WebSocket((location.protocol === 'https:' ? 'wss' : 'ws') + '://' + location.host + '/api/ws');
  } catch (e) {
    return;
  }
  // Large live samples arrive as binary frames (see contract/wire.ts); the client decodes them.
  ws.binaryType = 'arraybuffer';
  var boot = { ws: ws, received: [], sub: { t: 'sub', id: 0, stream: 'stats', params: { connectionId: 'local' } } };
  ws.onopen = function () {
    ws.send(JSON.stringify(boot.sub));
  };
  ws.onmessage = function (e) {
    boot.received.push(e.data);
  };
  window.__brokerdeckBoot = boot;
})();
