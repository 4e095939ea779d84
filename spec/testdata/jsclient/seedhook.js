#!/usr/bin/env node
// The seed's useSocket hook (../../../../shared/seed/socket-io-notes.md in
// the workspace, "A standard example"), run with the official
// socket.io-client 4.8 outside React: the same calls in the same order.
// It answers "can a page written like the seed chat with this server?"
// (CONTRACT.md SEED-1).
//
//   await fetch('/api/socket')
//   const socket = io()
//   setWs(io())                      // a second, separate connection
//   socket.on('connect', () => socket.emit('connecting', {username}))
//   ...
//   sendMessage = (data) => ws.emit('writeMessage', {...data, username})
//
// It sends one message once `connected` arrived on `socket` (the page shows
// the chat then; a user types after that), or at once with --no-wait (the
// two io() calls race: the write may reach the server before the join).
//
// Usage: node seedhook.js --url http://127.0.0.1:N [--init-path /api/socket]
//                         [--username NAME] [--no-wait] [--timeout MS]
//
// Prints one JSON line and exits 0 when the message came back on `socket`
// in a messageWritten, 1 when it did not (refused, or nothing in time), 2 on
// bad usage:
//   {"outcome":"delivered"|"refused"|"timeout", "connections":2, "code":..., "message":...}
'use strict';

const { parseArgs } = require('node:util');
const { randomBytes } = require('node:crypto');
const { io } = require('socket.io-client');

function parseConfig(argv) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      url: { type: 'string' },
      'init-path': { type: 'string', default: '/api/socket' },
      username: { type: 'string' },
      'no-wait': { type: 'boolean', default: false },
      timeout: { type: 'string', default: '10000' },
    },
  });
  if (!values.url) throw new Error('--url is required');
  const url = new URL(values.url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`--url ${values.url}: want http:// or https://`);
  if (!/^\d+$/.test(values.timeout)) throw new Error(`--timeout ${values.timeout}: want milliseconds`);
  return {
    url: url.origin,
    initPath: values['init-path'],
    username: values.username || `hook-${randomBytes(4).toString('hex')}`,
    noWait: values['no-wait'],
    timeout: Number(values.timeout),
  };
}

async function main(argv) {
  let cfg;
  try {
    cfg = parseConfig(argv);
  } catch (err) {
    process.stderr.write(`seedhook.js: ${err.message}\n`);
    return 2;
  }
  const { username } = cfg;
  const message = `hello from the seed's hook ${randomBytes(4).toString('hex')}`;
  let socket;
  let ws;
  const result = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ outcome: 'timeout' }), cfg.timeout);
    const done = (r) => {
      clearTimeout(timer);
      resolve(r);
    };
    const socketInitializer = async () => {
      if (cfg.initPath) await fetch(cfg.url + cfg.initPath);
      socket = io(cfg.url);
      ws = io(cfg.url);

      const sendMessage = (data) => {
        ws.emit('writeMessage', { ...data, username });
      };

      socket.on('connect', () => {
        socket.emit('connecting', { username });
      });
      socket.on('connected', () => {
        if (!cfg.noWait) sendMessage({ message });
      });
      socket.on('messageWritten', ({ messagesList }) => {
        const last = Array.isArray(messagesList) ? messagesList[messagesList.length - 1] : undefined;
        if (last && last.message === message) done({ outcome: 'delivered', username: last.username });
      });
      // The reference's refusal (ERR-1) goes to the writing socket.
      ws.on('chatError', (e) => done({ outcome: 'refused', code: e && e.code, message: e && e.message }));
      if (cfg.noWait) sendMessage({ message });
    };
    socketInitializer().catch((err) => done({ outcome: 'error', message: err.message }));
  });
  // Two connections, as the seed's hook makes: two Engine.IO sessions.
  const ids = [socket, ws].map((s) => s && s.io.engine && s.io.engine.id).filter(Boolean);
  result.connections = new Set(ids).size;
  process.stdout.write(`${JSON.stringify(result)}\n`);
  for (const s of [socket, ws]) if (s) s.close();
  return result.outcome === 'delivered' ? 0 : 1;
}

main(process.argv.slice(2)).then((code) => process.exit(code));
