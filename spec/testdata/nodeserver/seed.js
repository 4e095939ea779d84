#!/usr/bin/env node
// The seed's chat server (../../../../shared/seed/socket-io-notes.md in the
// workspace; the page chatspec was created from), kept as a known-imperfect
// target: chatspec's checks must find its flaws, which proves they can fail.
//
// The event logic is the seed's, line for line in meaning. Two things are
// added so it can run as a test target: a plain HTTP server with the init
// route (the seed ran inside Next.js), and a try/catch around each handler,
// because the seed crashes the whole process on `writeMessage` without a
// payload, and a crash would hide every later finding.
//
// Known flaws check.js must report: USER-4 (a username is dropped when any
// one of its sockets leaves) and ROB-2 (`writeMessage 42` stores a message
// with neither field, which also breaks PAY-1).
//
// Usage: node seed.js --port N   (prints "listening http://127.0.0.1:N")
'use strict';

const http = require('node:http');
const { parseArgs } = require('node:util');
const { Server } = require('socket.io');

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });

let connectedUserList = [];
const messagesList = [];

const guard = (name, fn) => (...args) => {
  try {
    fn(...args);
  } catch (err) {
    process.stderr.write(`seed.js: ${name} threw: ${err.message}\n`);
  }
};

const httpServer = http.createServer((req, res) => {
  // The seed's SocketHandler: attach once, on the first request.
  if (!httpServer.io) {
    const io = new Server(httpServer, { serveClient: false });
    httpServer.io = io;
    io.on('connection', (socket) => {
      socket.on('connecting', guard('connecting', ({ username }) => {
        socket.username = username;
        const isSessionExist = Boolean(connectedUserList.find((item) => item.username === username));
        if (!isSessionExist) {
          connectedUserList.push({ username });
        }
        socket.emit('connected', { connectedUserList, messagesList });
        socket.broadcast.emit('joined', { connectedUserList });
      }));
      socket.on('disconnect', guard('disconnect', () => {
        connectedUserList = connectedUserList.filter((item) => item.username !== socket.username);
        socket.broadcast.emit('disconnected', { connectedUserList });
      }));
      socket.on('writeMessage', guard('writeMessage', ({ message, username }) => {
        messagesList.push({ username, message });
        socket.emit('messageWritten', { messagesList });
        socket.broadcast.emit('messageWritten', { messagesList });
      }));
    });
  }
  res.end();
});

httpServer.listen(Number(values.port), '127.0.0.1', () => {
  process.stdout.write(`listening http://127.0.0.1:${httpServer.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
