#!/usr/bin/env node
// node_stompit.js: the stompit npm package (npm install stompit) against `make run`: send
// to a queue, receive it back, acknowledge. STOMPD_PORT / STOMPD_LOGIN / STOMPD_PASSCODE
// override the defaults (61613, no login).
'use strict';
const stompit = require('stompit');

const headers = { host: 'localhost', 'accept-version': '1.2' };
if (process.env.STOMPD_LOGIN) {
  headers.login = process.env.STOMPD_LOGIN;
  headers.passcode = process.env.STOMPD_PASSCODE || '';
}
const options = {
  host: '127.0.0.1',
  port: Number(process.env.STOMPD_PORT || 61613),
  connectHeaders: headers,
};

stompit.connect(options, (err, client) => {
  if (err) throw err;
  const timer = setTimeout(() => { console.error('no message'); process.exit(1); }, 10000);
  client.subscribe({ destination: '/queue/example', ack: 'client-individual' }, (e, msg) => {
    if (e) throw e;
    msg.readString('utf-8', (e2, body) => {
      if (e2) throw e2;
      console.log('node got:', body);
      client.ack(msg);
      clearTimeout(timer);
      client.disconnect();
    });
  });
  const frame = client.send({ destination: '/queue/example' });
  frame.write('hello from node');
  frame.end();
});
