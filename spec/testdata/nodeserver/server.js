#!/usr/bin/env node
// An independent implementation of the chat contract (spec/CONTRACT.md) on
// socket.io 4.8. It exists so that chatspec's suite is checked against a
// second server written from the contract text alone, by a different stack,
// and is not quietly tuned to the Go reference.
//
// Usage:
//   node server.js --port N [--path /socket.io/] [--init-path /api/socket]
//                  [--history-limit 200] [--lazy] [see --help for limits]
//
// Prints "listening http://127.0.0.1:N" on stdout once it accepts
// connections; binds 127.0.0.1 only. SIGINT/SIGTERM close it gracefully.
'use strict';

const http = require('node:http');
const { parseArgs } = require('node:util');
const { Server } = require('socket.io');

const USAGE = `usage: node server.js --port N [options]

  --port N               TCP port on 127.0.0.1 (0 picks a free one)    (required)
  --path P               Socket.IO path                                 (/socket.io/)
  --init-path P          path answered with 200 to a GET, like the seed's
                         /api/socket route ("" disables it)             (/api/socket)
  --lazy                 attach Socket.IO only on the first GET of the init
                         path, as the seed's Next.js route does
  --history-limit N      keep the newest N messages (0 = unbounded)     (200)
  --max-username N       longest username, in code points               (64)
  --max-message N        longest message, in code points                (4000)
  --max-payload BYTES    Engine.IO maxPayload (maxHttpBufferSize)       (100000)
  --rate-burst N         writeMessage bucket size per socket            (100)
  --rate-per-second N    writeMessage refill rate per socket            (50)
  --ping-interval MS     Engine.IO pingInterval                         (25000)
  --ping-timeout MS      Engine.IO pingTimeout                          (20000)

examples:
  node server.js --port 3000
  node server.js --port 0 --lazy --init-path /api/socket --history-limit 50
`;

// parseConfig turns argv into a validated config or throws an Error whose
// message names the offending flag.
function parseConfig(argv) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      port: { type: 'string' },
      path: { type: 'string', default: '/socket.io/' },
      'init-path': { type: 'string', default: '/api/socket' },
      lazy: { type: 'boolean', default: false },
      'history-limit': { type: 'string', default: '200' },
      'max-username': { type: 'string', default: '64' },
      'max-message': { type: 'string', default: '4000' },
      'max-payload': { type: 'string', default: '100000' },
      'rate-burst': { type: 'string', default: '100' },
      'rate-per-second': { type: 'string', default: '50' },
      'ping-interval': { type: 'string', default: '25000' },
      'ping-timeout': { type: 'string', default: '20000' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return { help: true };

  const int = (name, min, max) => {
    const raw = values[name];
    if (raw === undefined) throw new Error(`--${name} is required`);
    if (!/^\d+$/.test(raw)) throw new Error(`--${name} ${JSON.stringify(raw)}: want a whole number`);
    const n = Number(raw);
    if (n < min || n > max) throw new Error(`--${name} ${n}: want ${min}..${max}`);
    return n;
  };
  const urlPath = (name) => {
    const p = values[name];
    if (p === '' && name === 'init-path') return '';
    if (!p.startsWith('/')) throw new Error(`--${name} ${JSON.stringify(p)}: want a path starting with "/"`);
    return p;
  };

  const cfg = {
    port: int('port', 0, 65535),
    path: urlPath('path'),
    initPath: urlPath('init-path'),
    lazy: values.lazy,
    historyLimit: int('history-limit', 0, 1e7),
    maxUsername: int('max-username', 1, 1e6),
    maxMessage: int('max-message', 1, 1e8),
    maxPayload: int('max-payload', 1024, 1e9),
    rateBurst: int('rate-burst', 1, 1e9),
    ratePerSecond: int('rate-per-second', 1, 1e9),
    pingInterval: int('ping-interval', 1, 1e9),
    pingTimeout: int('ping-timeout', 1, 1e9),
  };
  if (cfg.lazy && cfg.initPath === '') throw new Error('--lazy needs an --init-path to wait for');
  return cfg;
}

// ChatError is a refusal that is reported to the offending socket (ERR-1).
class ChatError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const codePoints = (s) => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

// isPlainObject accepts what a JSON object decodes to and nothing else: no
// arrays, null, numbers, strings, or objects with exotic prototypes.
const isPlainObject = (v) =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

// ownString reads a string field without following the prototype chain, so
// a payload key such as "__proto__" can never be mistaken for a field.
const ownString = (obj, key) =>
  Object.prototype.hasOwnProperty.call(obj, key) && typeof obj[key] === 'string' ? obj[key] : undefined;

// Chat holds the contract's state: the user list and the history. It knows
// nothing about sockets beyond their ids, which keeps the rules in one place.
class Chat {
  constructor(cfg) {
    this.cfg = cfg;
    // username -> Set of socket ids. A Map iterates in insertion order, and a
    // username that leaves is deleted, so re-joining puts it at the end:
    // exactly the join order that USER-2 asks for.
    this.users = new Map();
    this.history = [];
  }

  userList() {
    return Array.from(this.users.keys(), (username) => ({ username }));
  }

  messagesList() {
    return this.history.map((m) => ({ username: m.username, message: m.message }));
  }

  validateUsername(payload) {
    if (!isPlainObject(payload)) throw new ChatError('invalid_payload', 'connecting wants one object {"username": string}');
    const username = ownString(payload, 'username');
    if (username === undefined) throw new ChatError('invalid_username', 'username must be a string');
    if (username.length === 0) throw new ChatError('invalid_username', 'username must not be empty');
    if (codePoints(username) > this.cfg.maxUsername) {
      throw new ChatError('invalid_username', `username is longer than ${this.cfg.maxUsername} characters`);
    }
    return username;
  }

  // join records that socketId holds username. A username already held
  // keeps its place in the list (USER-1, USER-2).
  join(socketId, username) {
    let holders = this.users.get(username);
    if (!holders) {
      holders = new Set();
      this.users.set(username, holders);
    }
    holders.add(socketId);
  }

  // leave drops socketId from username and reports whether that was its
  // last socket, i.e. whether the user is gone (USER-3 vs USER-4).
  leave(socketId, username) {
    const holders = this.users.get(username);
    if (!holders || !holders.delete(socketId)) return false;
    if (holders.size > 0) return false;
    this.users.delete(username);
    return true;
  }

  validateMessage(payload, ownUsername) {
    if (!isPlainObject(payload)) {
      throw new ChatError('invalid_payload', 'writeMessage wants one object {"message": string, "username": string}');
    }
    const message = ownString(payload, 'message');
    if (message === undefined) throw new ChatError('invalid_payload', 'message must be a string');
    const username = ownString(payload, 'username');
    if (username !== ownUsername) {
      throw new ChatError('username_mismatch', 'username must be the one this socket joined with');
    }
    if (codePoints(message) > this.cfg.maxMessage) {
      throw new ChatError('message_too_long', `message is longer than ${this.cfg.maxMessage} characters`);
    }
    return message;
  }

  append(username, message) {
    this.history.push(Object.freeze({ username, message }));
    const limit = this.cfg.historyLimit;
    if (limit > 0 && this.history.length > limit) {
      this.history.splice(0, this.history.length - limit);
    }
  }
}

// TokenBucket limits one socket's writeMessage rate (SEC-4).
class TokenBucket {
  constructor(burst, perSecond) {
    this.burst = burst;
    this.perMs = perSecond / 1000;
    this.tokens = burst;
    this.last = Date.now();
  }

  take() {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.perMs);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

const CHAT_EVENTS = new Set(['connecting', 'writeMessage']);

// wireChat registers the contract's handlers on io.
function wireChat(io, chat, cfg, log) {
  io.on('connection', (socket) => {
    const bucket = new TokenBucket(cfg.rateBurst, cfg.ratePerSecond);
    let left = false;

    // refuse reports a refusal to this socket only (ERR-1): a chatError
    // event, and a negative ack when the client asked for one.
    const refuse = (event, err, ack) => {
      const refusal = err instanceof ChatError ? err : new ChatError('internal', 'the server failed to handle this event');
      if (!(err instanceof ChatError)) log(`bug: ${event} from ${socket.id}: ${err && err.stack}`);
      try {
        socket.emit('chatError', { event, code: refusal.code, message: refusal.message });
        if (ack) ack({ ok: false, code: refusal.code, message: refusal.message });
      } catch (emitErr) {
        log(`cannot report ${refusal.code} to ${socket.id}: ${emitErr}`);
      }
    };

    // handle wraps one client event's handler. The last argument is an ack
    // callback if the client asked for one. Nothing thrown inside fn ever
    // escapes into socket.io's emitter.
    const handle = (event, fn) => (...args) => {
      const ack = args.length > 0 && typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
      try {
        if (args.length !== 1) {
          throw new ChatError('invalid_payload', `${event} wants exactly one object argument, got ${args.length}`);
        }
        fn(args[0]);
        if (ack) ack({ ok: true });
      } catch (err) {
        refuse(event, err, ack);
      }
    };

    socket.on('connecting', handle('connecting', (payload) => {
      if (socket.data.username !== undefined) throw new ChatError('invalid_payload', 'already joined');
      const username = chat.validateUsername(payload);
      socket.data.username = username;
      chat.join(socket.id, username);
      socket.emit('connected', { connectedUserList: chat.userList(), messagesList: chat.messagesList() });
      socket.broadcast.emit('joined', { connectedUserList: chat.userList() });
    }));

    socket.on('writeMessage', handle('writeMessage', (payload) => {
      const username = socket.data.username;
      if (username === undefined) throw new ChatError('not_joined', 'emit connecting before writeMessage');
      const message = chat.validateMessage(payload, username);
      if (!bucket.take()) throw new ChatError('rate_limited', 'too many messages; slow down');
      chat.append(username, message);
      io.emit('messageWritten', { messagesList: chat.messagesList() });
    }));

    socket.onAny((event, ...args) => {
      if (CHAT_EVENTS.has(event)) return;
      const name = String(event);
      const ack = args.length > 0 && typeof args[args.length - 1] === 'function' ? args[args.length - 1] : undefined;
      refuse(name, new ChatError('unknown_event', `unknown event ${JSON.stringify(name).slice(0, 80)}`), ack);
    });

    socket.on('disconnect', () => {
      // Idempotent: a socket leaves once, whatever the library reports.
      if (left) return;
      left = true;
      const username = socket.data.username;
      if (username === undefined) return; // USER-5: an unjoined socket removes nobody.
      try {
        if (chat.leave(socket.id, username)) {
          socket.broadcast.emit('disconnected', { connectedUserList: chat.userList() });
        }
      } catch (err) {
        log(`bug: disconnect of ${socket.id}: ${err && err.stack}`);
      }
    });
  });
}

function main(argv) {
  let cfg;
  try {
    cfg = parseConfig(argv);
  } catch (err) {
    process.stderr.write(`server.js: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (cfg.help) {
    process.stdout.write(USAGE);
    return 0;
  }

  const log = (line) => process.stderr.write(`server.js: ${line}\n`);
  // A test server must outlive any payload: whatever slips past the
  // handlers' own guards is logged, not fatal.
  process.on('uncaughtException', (err) => log(`uncaught: ${err && err.stack}`));
  const chat = new Chat(cfg);
  let io = null;

  const attach = () => {
    io = new Server(httpServer, {
      path: cfg.path,
      serveClient: false,
      maxHttpBufferSize: cfg.maxPayload,
      pingInterval: cfg.pingInterval,
      pingTimeout: cfg.pingTimeout,
    });
    wireChat(io, chat, cfg, log);
  };

  // Requests that Socket.IO does not claim land here. Once Socket.IO is
  // attached it intercepts its own path before this handler runs.
  const httpServer = http.createServer((req, res) => {
    const path = (req.url || '').split('?')[0];
    if (cfg.initPath !== '' && path === cfg.initPath && (req.method === 'GET' || req.method === 'HEAD')) {
      // Like the seed's route: attach on the first request, and only then.
      // Repeating the request changes no state (CONN-2).
      if (io === null) attach();
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(req.method === 'HEAD' ? undefined : 'ok\n');
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('not found\n');
  });
  httpServer.on('clientError', (err, sock) => {
    if (sock.writable) sock.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else sock.destroy();
  });
  if (!cfg.lazy) attach();

  httpServer.on('error', (err) => {
    log(`listen: ${err.message}`);
    process.exitCode = 1;
  });
  httpServer.listen(cfg.port, '127.0.0.1', () => {
    const { port } = httpServer.address();
    process.stdout.write(`listening http://127.0.0.1:${port}\n`);
  });

  let stopping = false;
  const stop = (signal) => {
    if (stopping) process.exit(130); // a second signal means now
    stopping = true;
    log(`${signal}: closing`);
    const done = () => process.exit(0);
    if (io) io.close(done); // also closes httpServer
    else httpServer.close(done);
    setTimeout(done, 2000).unref();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  return undefined;
}

if (require.main === module) {
  const code = main(process.argv.slice(2));
  if (code !== undefined) process.exitCode = code;
}

// Exported for faulty.js, which breaks Chat on purpose to prove that the
// checks catch each fault.
module.exports = { Chat, main };
