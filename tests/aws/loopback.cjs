/**
 * Preloaded (`node -r`) into the SNS and Kinesis test servers, which listen on
 * every interface (both hard-code 0.0.0.0): every server socket of the process
 * listens on 127.0.0.1 instead, so nothing started by the tests is reachable
 * from another machine.
 */
'use strict';
const net = require('node:net');

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function loopbackListen(...args) {
  const first = args[0];
  if (first && typeof first === 'object' && !Array.isArray(first)) {
    // A path (Unix socket) or a handle is left alone; a port is bound to loopback.
    if (first.path === undefined && first.handle === undefined && first.fd === undefined) args[0] = { ...first, host: '127.0.0.1' };
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    if (typeof args[1] === 'string') args[1] = '127.0.0.1';
    else args.splice(1, 0, '127.0.0.1');
  }
  return listen.apply(this, args);
};
