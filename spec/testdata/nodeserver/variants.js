#!/usr/bin/env node
// Correct chat servers written differently: server.js's rules (its Chat
// class) behind wiring that varies only in what spec/CONTRACT.md leaves
// open (§8, the grades, ERR-1's format, the limits). chatspec must pass
// every one of them; a failure is either a contract violation here or a
// false verdict of the suite. faulty.js is the opposite: servers that must
// fail.
//
// Usage:
//   node variants.js --variant NAME[,NAME...] --port N [--init-path P]
//                    [--ping-interval MS] [--ping-timeout MS] [--history-limit N]
//
// Prints "listening http://127.0.0.1:N" like server.js; binds 127.0.0.1
// only; SIGINT/SIGTERM close it.
'use strict';

const http = require('node:http');
const { parseArgs } = require('node:util');
const { Server } = require('socket.io');
const parser = require('socket.io-parser');
const { Chat } = require('./server.js');

// VARIANTS names each difference and what it leaves open. Several can be
// combined with commas; "plain" is none of them (server.js's choices, to
// prove this file's own wiring).
const VARIANTS = {
  plain: "server.js's choices, through this file's wiring",
  'extra-fields': 'extra fields in every entry and payload, including the other list (PAY-2)',
  'field-order': 'keys in another order in every object (PAY-2)',
  whitespace: 'JSON with indentation and spaces inside the Socket.IO packets (PAY-2)',
  rooms: 'joined sockets enter a room; joined/messageWritten/disconnected reach only it (JOIN-4, MSG-1)',
  'separate-emits': "messageWritten as socket.emit + socket.broadcast.emit, like the seed (MSG-1)",
  acks: 'acks carry payloads of their own: connected data, a message id, {error} (§8)',
  'no-acks': 'acknowledgements are never called; refusals are a chatError event only (§8, ERR-1)',
  'error-event': 'refusals as exception {status, message}, no acks (ERR-1 format is open)',
  'ack-errors': 'refusals only through the ack when the client asked for one, never an event (ERR-1)',
  'chatty-disconnect': 'every disconnect sends disconnected with the current list to everyone, like the seed (USER-4, USER-5)',
  'no-cap': 'history is never capped (HIST-4 is a SHOULD; the suite cannot tell above 250)',
  'cap-50': 'history capped at 50, the smallest cap HIST-4 accepts',
  recovery: "socket.io's connectionStateRecovery enabled (broadcasts carry the library's offset)",
  deflate: 'WebSocket permessage-deflate on for every frame',
  'async-store': 'joins and messages go through an async store (a serial queue with delays) before any emit',
  defaults: "socket.io's default heartbeat (25 s + 20 s), whatever --ping-* say",
  'broadcast-first': 'the others hear of a join or message before the joiner or sender does',
  'slow-store': 'async-store whose every operation takes 20 ms, like a remote database',
  namespace: 'the chat lives on namespace /chat; the main namespace only connects (CONN-1 --namespace)',
  'system-messages': 'joins and leaves also append a notice to history, from the username "system"',
  'small-limits': 'usernames up to 32 code points (JOIN-5), messages up to 280 (SEC-3 leaves the limits open)',
  'lazy-204': 'Socket.IO attached on the first GET of the init path, which answers 204 No Content (CONN-2: any 2xx)',
  'engine-options': 'Engine.IO options a team may set: a cookie, allowEIO3, gzip for every polling response, 1 MB maxPayload',
  'extra-events': 'events the contract does not name: welcome on connect, userCount to all on every join and leave',
  'rewrite-username': 'a writeMessage under another string username is stored under the sender\'s own (SEC-1 allows it)',
  'silent-errors': 'refusals are reported nowhere: breaks ERR-1 (robust) on purpose, a control for the error-format variants',
  'rate-10': 'writeMessage limited to a burst of 10 and 10 per second per socket (SEC-4, SEC-5)',
};

const USAGE = `usage: node variants.js --variant NAME[,NAME...] --port N [options]

  --variant NAMES        one or more of the variants below, comma-separated  (required)
  --port N               TCP port on 127.0.0.1 (0 picks a free one)          (required)
  --path P               Socket.IO path                                       (/socket.io/)
  --init-path P          path answered with 200 to a GET ("" disables it)     (/api/socket)
  --history-limit N      keep the newest N messages (0 = unbounded)           (200)
  --ping-interval MS     Engine.IO pingInterval                               (25000)
  --ping-timeout MS      Engine.IO pingTimeout                                (20000)

variants:
${Object.entries(VARIANTS).map(([k, v]) => `  ${k.padEnd(18)} ${v}`).join('\n')}
`;

function parseConfig(argv) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      variant: { type: 'string' },
      port: { type: 'string' },
      path: { type: 'string', default: '/socket.io/' },
      'init-path': { type: 'string', default: '/api/socket' },
      'history-limit': { type: 'string', default: '200' },
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
  if (values.variant === undefined) throw new Error('--variant is required');
  const variants = new Set(values.variant.split(','));
  for (const v of variants) {
    if (!Object.hasOwn(VARIANTS, v)) throw new Error(`--variant ${JSON.stringify(v)}: want one of ${Object.keys(VARIANTS).join(', ')}`);
  }
  for (const p of ['path', 'init-path']) {
    if (values[p] !== '' && !values[p].startsWith('/')) throw new Error(`--${p} ${JSON.stringify(values[p])}: want a path starting with "/"`);
  }
  if (values.path === '') throw new Error('--path must not be empty');
  const cfg = {
    variants,
    port: int('port', 0, 65535),
    path: values.path,
    initPath: values['init-path'],
    historyLimit: int('history-limit', 0, 1e7),
    pingInterval: int('ping-interval', 1, 1e9),
    pingTimeout: int('ping-timeout', 1, 1e9),
    // server.js's defaults, which Chat reads.
    maxUsername: 64,
    maxMessage: 4000,
  };
  if (variants.has('no-cap')) cfg.historyLimit = 0;
  if (variants.has('cap-50')) cfg.historyLimit = 50;
  if (variants.has('small-limits')) Object.assign(cfg, { maxUsername: 32, maxMessage: 280 });
  if (variants.has('lazy-204') && cfg.initPath === '') throw new Error('--variant lazy-204 needs an --init-path');
  if (variants.has('slow-store')) variants.add('async-store');
  if (variants.has('defaults')) Object.assign(cfg, { pingInterval: 25000, pingTimeout: 20000 });
  return cfg;
}

// VariantChat is Chat with the entry shapes of extra-fields and field-order.
// The rules (who is listed, in which order, what history holds) stay Chat's.
class VariantChat extends Chat {
  constructor(cfg) {
    super(cfg);
    this.extra = cfg.variants.has('extra-fields');
    this.reorder = cfg.variants.has('field-order');
    this.since = new Map(); // username -> ISO time of its current presence
    this.ids = new WeakMap(); // history entry -> message id
    this.nextId = 1;
  }

  join(socketId, username) {
    if (!this.users.has(username)) this.since.set(username, new Date().toISOString());
    super.join(socketId, username);
  }

  leave(socketId, username) {
    const gone = super.leave(socketId, username);
    if (gone) this.since.delete(username);
    return gone;
  }

  append(username, message) {
    super.append(username, message);
    this.ids.set(this.history[this.history.length - 1], this.nextId++);
    return this.nextId - 1;
  }

  userList() {
    return Array.from(this.users.keys(), (username) => {
      if (this.extra && this.reorder) return { since: this.since.get(username), username };
      if (this.extra) return { username, since: this.since.get(username) };
      return { username };
    });
  }

  messagesList() {
    return this.history.map((m) => {
      const id = this.ids.get(m);
      if (this.extra && this.reorder) return { time: Date.now(), message: m.message, id, username: m.username };
      if (this.extra) return { id, username: m.username, message: m.message, time: Date.now() };
      if (this.reorder) return { message: m.message, username: m.username };
      return { username: m.username, message: m.message };
    });
  }
}

const isPlainObject = (x) => x !== null && typeof x === 'object' && !Array.isArray(x) && Object.getPrototypeOf(x) === Object.prototype;

// ChatError is a refusal reported to the offending socket (ERR-1).
class ChatError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// isRefusal tells a refusal (this file's ChatError, or server.js's, which
// Chat's validators throw and server.js does not export) from a bug.
const isRefusal = (err) => err instanceof Error && typeof err.code === 'string' && /^[a-z_]+$/.test(err.code);

// Bucket is a per-socket writeMessage limit (SEC-4), server.js's numbers.
class Bucket {
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

// Queue runs async jobs one at a time, in arrival order, as a store with a
// single writer would: async-store's joins and messages wait on it.
class Queue {
  constructor() {
    this.tail = Promise.resolve();
  }

  run(job) {
    const p = this.tail.then(job);
    this.tail = p.catch(() => {});
    return p;
  }
}

// storeDelay is how long async-store's "database" takes: 0-4 ms, varying,
// so that completions do not line up with arrivals by accident.
let delaySeq = 0;
let slowStore = false;
const storeDelay = () => new Promise((resolve) => setTimeout(resolve, slowStore ? 20 : delaySeq++ % 5));

// payload builds a server event's object with the variant's extras and key
// order: fields is [[key, value], ...] in the contract's order.
function payload(v, fields, chat) {
  let entries = fields;
  if (v.has('extra-fields')) {
    // The whole state on every event, as some teams send it: the list the
    // contract does not ask for rides along as an extra field.
    const has = (k) => fields.some(([key]) => key === k);
    entries = [...fields, ['serverTime', new Date().toISOString()]];
    if (!has('messagesList')) entries.push(['messagesList', chat.messagesList()]);
    if (!has('connectedUserList')) entries.push(['connectedUserList', chat.userList()]);
  }
  return Object.fromEntries(v.has('field-order') ? entries.slice().reverse() : entries);
}

function wireChat(nsp, chat, cfg, log) {
  const v = cfg.variants;
  slowStore = v.has('slow-store');
  const store = new Queue();
  const ROOM = 'chat';
  const except = (socket) => (v.has('rooms') ? socket.to(ROOM) : socket.broadcast);
  const everyone = () => (v.has('rooms') ? nsp.to(ROOM) : nsp);

  nsp.on('connection', (socket) => {
    if (socket.recovered) {
      // connectionStateRecovery restored socket.data and the rooms of a
      // session whose disconnect already removed its user: the socket
      // starts unjoined, and the client's own connecting joins it again
      // (the stock client rejoins from its "connect" handler).
      delete socket.data.username;
      socket.leave(ROOM);
    }
    if (v.has('extra-events')) socket.emit('welcome', { server: 'variants.js', time: new Date().toISOString() });
    const bucket = v.has('rate-10') ? new Bucket(10, 10) : new Bucket(100, 50);
    let joining = false;
    let left = false;

    const refuse = (event, err, ack) => {
      const r = isRefusal(err) ? err : new ChatError('internal', 'the server failed to handle this event');
      if (!isRefusal(err)) log(`bug: ${event} from ${socket.id}: ${err && err.stack}`);
      if (v.has('silent-errors')) {
        if (ack) ack();
      } else if (v.has('error-event')) {
        socket.emit('exception', { status: 'error', message: `${event}: ${r.message}` });
      } else if (v.has('ack-errors')) {
        if (ack) ack({ error: r.message });
      } else {
        socket.emit('chatError', { event, code: r.code, message: r.message });
        if (ack && !v.has('no-acks') && !v.has('error-event')) {
          ack(v.has('acks') ? { error: r.message } : { ok: false, code: r.code, message: r.message });
        }
      }
    };

    // handle wraps a handler; fn may return a promise (async-store) and
    // resolves to what a successful ack carries under the acks variant.
    const handle = (event, fn) => (...args) => {
      const ack = args.length > 0 && typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
      const ok = (result) => {
        if (!ack || v.has('no-acks') || v.has('error-event') || v.has('ack-errors')) {
          // ack-errors acks successes too, with nothing: a refusal is the
          // only ack that carries something.
          if (ack && v.has('ack-errors')) ack();
          return;
        }
        ack(v.has('acks') ? result : { ok: true });
      };
      try {
        if (args.length !== 1) throw new ChatError('invalid_payload', `${event} wants exactly one object argument, got ${args.length}`);
        Promise.resolve(fn(args[0])).then(ok, (err) => refuse(event, err, ack));
      } catch (err) {
        refuse(event, err, ack);
      }
    };

    const joinNow = (username) => {
      if (v.has('system-messages') && !chat.users.has(username)) chat.append('system', `${username} joined`);
      chat.join(socket.id, username);
      if (v.has('rooms')) socket.join(ROOM);
      const connected = payload(v, [['connectedUserList', chat.userList()], ['messagesList', chat.messagesList()]], chat);
      const joined = payload(v, [['connectedUserList', chat.userList()]], chat);
      if (v.has('broadcast-first')) except(socket).emit('joined', joined);
      socket.emit('connected', connected);
      if (!v.has('broadcast-first')) except(socket).emit('joined', joined);
      if (v.has('extra-events')) nsp.emit('userCount', { count: chat.users.size });
      return connected;
    };

    socket.on('connecting', handle('connecting', (body) => {
      if (joining || socket.data.username !== undefined) throw new ChatError('invalid_payload', 'already joined');
      const username = chat.validateUsername(body);
      joining = true;
      if (!v.has('async-store')) {
        socket.data.username = username;
        return joinNow(username);
      }
      return store.run(async () => {
        await storeDelay();
        // The socket may have gone while the store worked: then it never
        // joins, so nobody is listed for it (USER-5).
        if (left) return undefined;
        socket.data.username = username;
        return joinNow(username);
      });
    }));

    const writeNow = (username, message) => {
      const id = chat.append(username, message);
      const body = payload(v, [['messagesList', chat.messagesList()]], chat);
      if (v.has('broadcast-first')) {
        except(socket).emit('messageWritten', body);
        socket.emit('messageWritten', body);
      } else if (v.has('separate-emits')) {
        socket.emit('messageWritten', body);
        except(socket).emit('messageWritten', body);
      } else {
        everyone().emit('messageWritten', body);
      }
      return { id, time: new Date().toISOString() };
    };

    socket.on('writeMessage', handle('writeMessage', (body) => {
      const username = socket.data.username;
      if (username === undefined) throw new ChatError('not_joined', 'emit connecting before writeMessage');
      let checked = body;
      if (v.has('rewrite-username') && isPlainObject(body) && typeof body.username === 'string') {
        checked = { ...body, username };
      }
      const message = chat.validateMessage(checked, username);
      if (!bucket.take()) throw new ChatError('rate_limited', 'too many messages; slow down');
      if (!v.has('async-store')) return writeNow(username, message);
      return store.run(async () => {
        await storeDelay();
        return writeNow(username, message);
      });
    }));

    socket.onAny((event, ...args) => {
      if (event === 'connecting' || event === 'writeMessage') return;
      const name = String(event);
      const ack = args.length > 0 && typeof args[args.length - 1] === 'function' ? args[args.length - 1] : undefined;
      refuse(name, new ChatError('unknown_event', `unknown event ${JSON.stringify(name).slice(0, 80)}`), ack);
    });

    const leaveNow = () => {
      const username = socket.data.username;
      const gone = username !== undefined && chat.leave(socket.id, username);
      if (gone && v.has('system-messages')) chat.append('system', `${username} left`);
      if (gone && v.has('extra-events')) nsp.emit('userCount', { count: chat.users.size });
      if (v.has('chatty-disconnect')) {
        // The seed's way: tell everyone on every disconnect, whether or not
        // the list changed (USER-4, USER-5 allow an unchanged list).
        nsp.emit('disconnected', payload(v, [['connectedUserList', chat.userList()]], chat));
      } else if (gone) {
        except(socket).emit('disconnected', payload(v, [['connectedUserList', chat.userList()]], chat));
      }
    };

    socket.on('disconnect', () => {
      if (left) return;
      left = true;
      try {
        if (v.has('async-store')) store.run(async () => leaveNow()).catch((err) => log(`bug: leave: ${err && err.stack}`));
        else leaveNow();
      } catch (err) {
        log(`bug: disconnect of ${socket.id}: ${err && err.stack}`);
      }
    });
  });
}

// IndentedEncoder writes event packets' JSON with indentation: the same
// Socket.IO v5 packets, other bytes (whitespace variant).
class IndentedEncoder extends parser.Encoder {
  encodeAsString(obj) {
    let s = `${obj.type}`;
    if (obj.attachments !== undefined) s += `${obj.attachments}-`;
    if (obj.nsp && obj.nsp !== '/') s += `${obj.nsp},`;
    if (obj.id != null) s += obj.id;
    if (obj.data != null) s += JSON.stringify(obj.data, null, 2);
    return s;
  }
}

function main(argv) {
  let cfg;
  try {
    cfg = parseConfig(argv);
  } catch (err) {
    process.stderr.write(`variants.js: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (cfg.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const log = (line) => process.stderr.write(`variants.js: ${line}\n`);
  process.on('uncaughtException', (err) => log(`uncaught: ${err && err.stack}`));

  const v = cfg.variants;
  let io = null;
  const httpServer = http.createServer((req, res) => {
    const path = (req.url || '').split('?')[0];
    if (cfg.initPath !== '' && path === cfg.initPath && (req.method === 'GET' || req.method === 'HEAD')) {
      if (v.has('lazy-204')) {
        if (io === null) attach();
        res.writeHead(204);
        res.end();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(req.method === 'HEAD' ? undefined : 'ok\n');
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('not found\n');
  });
  const opts = {
    path: cfg.path,
    serveClient: false,
    maxHttpBufferSize: 100000,
    pingInterval: cfg.pingInterval,
    pingTimeout: cfg.pingTimeout,
  };
  if (v.has('recovery')) opts.connectionStateRecovery = { maxDisconnectionDuration: 2 * 60 * 1000 };
  if (v.has('deflate')) opts.perMessageDeflate = { threshold: 0 };
  if (v.has('whitespace')) opts.parser = { Encoder: IndentedEncoder, Decoder: parser.Decoder };
  if (v.has('engine-options')) {
    Object.assign(opts, {
      cookie: { name: 'io', path: '/', httpOnly: true, sameSite: 'lax' },
      allowEIO3: true,
      httpCompression: { threshold: 0 },
      maxHttpBufferSize: 1e6,
    });
  }
  const chat = new VariantChat(cfg);
  function attach() {
    io = new Server(httpServer, opts);
    wireChat(v.has('namespace') ? io.of('/chat') : io.of('/'), chat, cfg, log);
  }
  if (!v.has('lazy-204')) attach();

  httpServer.on('error', (err) => {
    log(`listen: ${err.message}`);
    process.exitCode = 1;
  });
  httpServer.listen(cfg.port, '127.0.0.1', () => {
    process.stdout.write(`listening http://127.0.0.1:${httpServer.address().port}\n`);
  });
  let stopping = false;
  const stop = () => {
    if (stopping) process.exit(130);
    stopping = true;
    const done = () => process.exit(0);
    if (io) io.close(done);
    else httpServer.close(done);
    setTimeout(done, 2000).unref();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return undefined;
}

const code = main(process.argv.slice(2));
if (code !== undefined) process.exitCode = code;
