#!/usr/bin/env node
// A conformance check of a chat server against spec/CONTRACT.md, driven by
// the official socket.io-client 4.8. It answers one question that chatspec's
// own Go client cannot: "does a stock Socket.IO client find this server
// correct?" over websocket, long-polling, and polling-then-upgrade.
//
// Usage:
//   node check.js --url http://127.0.0.1:N [--transport websocket|polling|upgrade]
//                 [--init-path /api/socket] [--path /socket.io/]
//
// Prints one line per check ("ok ID ..." or "FAIL ID ...: expected X, got Y")
// and a final "N passed, M failed"; exits 0 only if every check passed.
// Every wait is bounded and the whole run is capped (--timeout, default 18 s).
'use strict';

const { parseArgs } = require('node:util');
const { randomBytes } = require('node:crypto');
const { io } = require('socket.io-client');

const USAGE = `usage: node check.js --url URL [options]

  --url URL          server base URL, e.g. http://127.0.0.1:3000    (required)
  --transport T      websocket | polling | upgrade                  (websocket)
  --init-path P      GET this path (expect 2xx) before connecting, as the
                     seed's client does; omit for servers without one
  --path P           Socket.IO path                                 (/socket.io/)
  --timeout MS       cap on the whole run                           (18000)
  --step-timeout MS  cap on any single wait                         (5000)
  --extended         also check the robust and security grades (ROB, SEC,
                     ERR-1) in the reference's chatError/ack format

examples:
  node check.js --url http://127.0.0.1:3000 --transport polling --init-path /api/socket
  node check.js --url http://127.0.0.1:8080 --transport upgrade
`;

const TRANSPORTS = {
  websocket: ['websocket'],
  polling: ['polling'],
  upgrade: ['polling', 'websocket'],
};

function parseConfig(argv) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      url: { type: 'string' },
      transport: { type: 'string', default: 'websocket' },
      'init-path': { type: 'string' },
      path: { type: 'string', default: '/socket.io/' },
      timeout: { type: 'string', default: '18000' },
      'step-timeout': { type: 'string', default: '5000' },
      extended: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return { help: true };
  if (!values.url) throw new Error('--url is required');
  let url;
  try {
    url = new URL(values.url);
  } catch (err) {
    throw new Error(`--url ${JSON.stringify(values.url)}: ${err.message}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`--url ${JSON.stringify(values.url)}: want http:// or https://`);
  }
  if (!(values.transport in TRANSPORTS)) {
    throw new Error(`--transport ${JSON.stringify(values.transport)}: want websocket, polling or upgrade`);
  }
  const ms = (name) => {
    const raw = values[name];
    if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new Error(`--${name} ${JSON.stringify(raw)}: want milliseconds > 0`);
    return Number(raw);
  };
  for (const name of ['init-path', 'path']) {
    const p = values[name];
    if (p !== undefined && !p.startsWith('/')) throw new Error(`--${name} ${JSON.stringify(p)}: want a path starting with "/"`);
  }
  return {
    url: url.origin,
    transport: values.transport,
    initPath: values['init-path'],
    path: values.path,
    timeout: ms('timeout'),
    stepTimeout: ms('step-timeout'),
    extended: values.extended,
  };
}

// Abort ends the scenario early: a check it depends on failed.
class Abort extends Error {}

// Results prints checks as they are decided and counts them.
class Results {
  constructor(out) {
    this.out = out;
    this.passed = 0;
    this.failed = 0;
  }

  ok(id, what) {
    this.passed++;
    this.out(`ok ${id} ${what}`);
  }

  fail(id, what, expected, got) {
    this.failed++;
    this.out(`FAIL ${id} ${what}: expected ${expected}, got ${got}`);
  }

  // check records a pass when cond holds, a failure otherwise.
  check(id, what, cond, expected, got) {
    if (cond) this.ok(id, what);
    else this.fail(id, what, expected, typeof got === 'function' ? got() : got);
    return cond;
  }

  // need is check, but the scenario cannot go on without it.
  need(id, what, cond, expected, got) {
    if (!this.check(id, what, cond, expected, got)) throw new Abort(`${id} ${what}`);
  }
}

const show = (v) => {
  let s;
  try {
    s = JSON.stringify(v);
  } catch {
    s = String(v);
  }
  if (s === undefined) s = String(v);
  return s.length > 300 ? `${s.slice(0, 300)}...(${s.length} chars)` : s;
};

const names = (list) => (Array.isArray(list) ? list.map((u) => (u && typeof u === 'object' ? u.username : u)) : list);
const count = (arr, x) => arr.filter((y) => y === x).length;
const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
// listsUser reports whether payload p carries a user list holding username.
const listsUser = (p, username) => isObj(p) && Array.isArray(p.connectedUserList) && names(p.connectedUserList).includes(username);

// chatMessage makes a test message. Its text starts with an ASCII id so the
// message can be recognised even if a server mangles the rest; PAY-3 and
// MSG-2 then compare the full text exactly.
const chatMessage = (nonce, tag, username, text) => {
  const id = `#${tag}.${nonce}#`;
  return { tag, username, id, message: `${id} ${text}` };
};
// isMessage reports whether list entry e is test message m.
const isMessage = (e, m) => isObj(e) && typeof e.message === 'string' && e.message.includes(m.id);

// The contract's server events and the fields PAY-1 requires of each.
const SHAPES = {
  connected: { connectedUserList: 'users', messagesList: 'messages' },
  joined: { connectedUserList: 'users' },
  disconnected: { connectedUserList: 'users' },
  messageWritten: { messagesList: 'messages' },
};

// shapeError returns why a server event breaks PAY-1, or '' if it does not.
function shapeError(name, args) {
  if (args.length !== 1) return `${args.length} arguments`;
  const [p] = args;
  if (!isObj(p)) return `argument ${show(p)} is not an object`;
  for (const [field, kind] of Object.entries(SHAPES[name])) {
    const list = p[field];
    if (!Array.isArray(list)) return `${field} is ${show(list)}, not an array`;
    for (const e of list) {
      if (!isObj(e)) return `${field} has element ${show(e)}`;
      if (typeof e.username !== 'string') return `${field} has element ${show(e)} without a string username`;
      if (kind === 'messages' && typeof e.message !== 'string') return `${field} has element ${show(e)} without a string message`;
    }
  }
  return '';
}

// Client is one socket with an ordered log of every server event it got.
class Client {
  constructor(label, cfg, deadline) {
    this.label = label;
    this.cfg = cfg;
    this.deadline = deadline;
    this.log = [];
    this.waiters = new Set();
    this.upgraded = false;
    this.closed = null;
    this.socket = io(cfg.url, {
      path: cfg.path,
      transports: TRANSPORTS[cfg.transport],
      upgrade: cfg.transport === 'upgrade',
      rememberUpgrade: false,
      forceNew: true, // one Engine.IO connection per client, never shared
      reconnection: false, // a dropped socket must show as a failure, not heal
      timeout: cfg.stepTimeout,
      autoConnect: false,
    });
    this.socket.io.on('open', () => {
      this.socket.io.engine.on('upgrade', () => {
        this.upgraded = true;
        this.notify();
      });
    });
    this.socket.onAny((name, ...args) => {
      this.log.push({ name, args });
      this.notify();
    });
    this.socket.on('connect', () => this.notify());
    this.socket.on('disconnect', (reason) => {
      this.closed = reason;
      this.notify();
    });
    this.socket.on('connect_error', (err) => {
      this.closed = `connect_error: ${err.message}`;
      this.notify();
    });
  }

  notify() {
    for (const w of this.waiters) w();
  }

  // until resolves with the first truthy value of probe(), re-evaluated on
  // every event, or with undefined once the step timeout or the run's
  // deadline passes.
  until(probe) {
    return new Promise((resolve) => {
      const ms = Math.max(0, Math.min(this.cfg.stepTimeout, this.deadline - Date.now()));
      let timer;
      const finish = (v) => {
        clearTimeout(timer);
        this.waiters.delete(tick);
        resolve(v);
      };
      const tick = () => {
        const v = probe();
        if (v) finish(v);
      };
      timer = setTimeout(() => finish(undefined), ms);
      this.waiters.add(tick);
      tick();
    });
  }

  // next waits for the first event called name at or after index from whose
  // payload satisfies pred; it returns {index, payload} or undefined.
  next(name, from, pred = () => true) {
    return this.until(() => {
      for (let i = from; i < this.log.length; i++) {
        const e = this.log[i];
        if (e.name === name && pred(e.args[0])) return { index: i, payload: e.args[0] };
      }
      return undefined;
    });
  }

  events(name, from, to = this.log.length) {
    return this.log.slice(from, to).filter((e) => e.name === name);
  }

  async connect() {
    this.socket.connect();
    return this.until(() => this.socket.connected || this.closed !== null);
  }

  emit(...args) {
    this.socket.emit(...args);
  }

  transportName() {
    const engine = this.socket.io.engine;
    return engine && engine.transport ? engine.transport.name : '(none)';
  }

  close() {
    this.socket.disconnect();
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function initGet(cfg, r, what) {
  if (cfg.initPath === undefined) return;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), cfg.stepTimeout);
  let status;
  try {
    const res = await fetch(cfg.url + cfg.initPath, { signal: ctl.signal });
    await res.arrayBuffer();
    status = res.status;
  } catch (err) {
    status = `error ${err.message}`;
  } finally {
    clearTimeout(timer);
  }
  r.need('CONN-2', `${what} GET ${cfg.initPath}`, typeof status === 'number' && status >= 200 && status < 300, '2xx', status);
}

async function scenario(cfg, r, deadline, clients) {
  const nonce = randomBytes(4).toString('hex');
  const ua = `js-a-${nonce}`;
  const ub = `js-b-${nonce}`;
  const uc = `js-c-${nonce}`;
  const open = async (label) => {
    const c = new Client(label, cfg, deadline);
    clients.push(c);
    await c.connect();
    r.need('CONN-1', `${label} connects over ${cfg.transport}`, c.socket.connected, 'connect', c.closed || 'timeout');
    if (cfg.transport === 'upgrade') {
      await c.until(() => c.upgraded && c.transportName() === 'websocket');
      r.need('TRANS-3', `${label} upgrades from polling`, c.transportName() === 'websocket',
        'transport websocket', `transport ${c.transportName()}`);
    } else {
      r.check(cfg.transport === 'polling' ? 'TRANS-1' : 'TRANS-2', `${label} transport is ${cfg.transport}`,
        c.transportName() === cfg.transport, cfg.transport, c.transportName());
    }
    return c;
  };
  const join = async (c, username, what) => {
    const from = c.log.length;
    c.emit('connecting', { username });
    const got = await c.next('connected', from);
    r.need('JOIN-1', `${what} gets connected`, got !== undefined, 'connected',
      () => `${c.closed || 'timeout'}; events ${show(c.log.slice(from).map((e) => e.name))}`);
    return got;
  };
  // endsWith matches a messageWritten whose last message is m.
  const endsWith = (m) => (p) => {
    const l = isObj(p) ? p.messagesList : undefined;
    return Array.isArray(l) && l.length > 0 && isMessage(l[l.length - 1], m);
  };
  // mentions matches a messageWritten that holds m anywhere, even with its
  // fields swapped: the first such event is the one m caused, and MSG-2 then
  // says precisely what is wrong with it instead of a bare timeout.
  const mentions = (m) => (p) => {
    const l = isObj(p) ? p.messagesList : undefined;
    return Array.isArray(l) && l.some((e) => isMessage(e, m) || (isObj(e) && typeof e.username === 'string' && e.username.includes(m.id)));
  };
  // written waits for m's messageWritten on each client, and checks MSG-1/2.
  const written = async (m, receivers, from) => {
    const got = new Map();
    for (const c of receivers) {
      const w = await c.next('messageWritten', from.get(c), mentions(m));
      r.need('MSG-1', `${c.label} gets messageWritten for ${m.tag}`, w !== undefined, 'messageWritten',
        () => `${c.closed || 'timeout'}; messageWritten lasts ${show(c.events('messageWritten', from.get(c)).map((e) => {
          const l = e.args[0] && e.args[0].messagesList;
          return Array.isArray(l) ? l[l.length - 1] : l;
        }))}`);
      const l = w.payload.messagesList;
      const last = l[l.length - 1];
      r.check('MSG-2', `${c.label}: ${m.tag} is last, as sent by ${m.username}`,
        isObj(last) && last.username === m.username && last.message === m.message,
        show({ username: m.username, message: m.message }), show(last));
      got.set(c, w);
    }
    return got;
  };
  const marks = (...cs) => new Map(cs.map((c) => [c, c.log.length]));
  const ourMessages = (list, msgs) => (Array.isArray(list) ? list : [])
    .filter((e) => msgs.some((m) => isMessage(e, m)))
    .map((e) => msgs.find((m) => isMessage(e, m)).tag);

  // 1. The seed's client fetches the init route before connecting.
  await initGet(cfg, r, 'first');

  // 2. A joins.
  const A = await open('A');
  const aConn = await join(A, ua, 'A');
  r.check('JOIN-2', 'A: connected lists A', count(names(aConn.payload.connectedUserList), ua) === 1,
    `${ua} once`, show(names(aConn.payload.connectedUserList)));
  r.check('PAY-1', 'A: connected.messagesList is an array', Array.isArray(aConn.payload.messagesList),
    'array', show(aConn.payload.messagesList));

  // 3. B joins: B gets connected, A gets joined, both lists in join order.
  const B = await open('B');
  const aBeforeB = A.log.length;
  const bConn = await join(B, ub, 'B');
  const bUsers = names(bConn.payload.connectedUserList);
  r.check('JOIN-2', 'B: connected lists A then B (join order)',
    count(bUsers, ua) === 1 && count(bUsers, ub) === 1 && bUsers.indexOf(ua) < bUsers.indexOf(ub),
    `[..${ua}..${ub}..]`, show(bUsers));
  const aJoined = await A.next('joined', aBeforeB, (p) => listsUser(p, ub));
  r.check('JOIN-3', 'A gets joined listing B', aJoined !== undefined, `joined with ${ub}`,
    () => show(A.events('joined', aBeforeB).map((e) => names(e.args[0] && e.args[0].connectedUserList))));
  if (aJoined) {
    const l = names(aJoined.payload.connectedUserList);
    r.check('USER-2', 'A: joined lists A before B', l.indexOf(ua) >= 0 && l.indexOf(ua) < l.indexOf(ub),
      `[..${ua}..${ub}..]`, show(l));
  }

  // 4. A writes m1: everyone incl. the sender gets it; it is also the barrier
  //    proving B was not sent joined for its own join.
  const m1 = chatMessage(nonce, 'm1', ua, `<b>bold</b> & "quotes" 'single' \\ привет 日本語 🎉👍🏽 e\u0301 👩\u200d💻 line\nbreak\ttab  two  spaces `);
  let from = marks(A, B);
  A.emit('writeMessage', { message: m1.message, username: ua });
  const w1 = await written(m1, [A, B], from);
  const bJoinedOwn = B.events('joined', bConn.index + 1, w1.get(B).index);
  r.check('JOIN-1', 'B gets no joined for its own join', bJoinedOwn.length === 0, 'none before m1',
    () => show(bJoinedOwn.map((e) => e.args)));
  r.check('JOIN-1', 'B gets connected exactly once', B.events('connected', 0).length === 1, 1, B.events('connected', 0).length);
  const aJoinedCount = A.events('joined', aBeforeB, w1.get(A).index).length;
  r.check('JOIN-3', 'A gets joined once for B', aJoinedCount === 1, 1, aJoinedCount);
  for (const c of [A, B]) {
    const last = w1.get(c).payload.messagesList.at(-1);
    r.check('PAY-3', `${c.label}: m1 text (HTML, quotes, Cyrillic, CJK, emoji, controls, spaces) is unchanged`,
      last.message === m1.message, show(m1.message), show(last.message));
  }

  // 5. A second socket joins with A's username: no duplicate anywhere.
  const A2 = await open('A2');
  from = marks(A, B, A2);
  const a2Conn = await join(A2, ua, 'A2 (same username as A)');
  const a2Users = names(a2Conn.payload.connectedUserList);
  r.check('USER-1', 'A2: connected lists A once', count(a2Users, ua) === 1, `${ua} once`, show(a2Users));
  r.check('USER-2', 'A2: connected keeps A before B', a2Users.indexOf(ua) >= 0 && a2Users.indexOf(ua) < a2Users.indexOf(ub),
    `[..${ua}..${ub}..]`, show(a2Users));
  r.check('HIST-3', 'A2: connected.messagesList holds m1',
    ourMessages(a2Conn.payload.messagesList, [m1]).join() === 'm1', '[m1]', show(ourMessages(a2Conn.payload.messagesList, [m1])));
  for (const c of [A, B]) {
    const j = await c.next('joined', from.get(c));
    r.check('JOIN-3', `${c.label} gets joined for A2`, j !== undefined, 'joined', c.closed || 'timeout');
    if (j) {
      const l = names(j.payload.connectedUserList);
      r.check('USER-1', `${c.label}: joined lists A once`, count(l, ua) === 1, `${ua} once`, show(l));
    }
  }

  // 6. B writes m2 while A writes m3 and m4 back to back: one order for all,
  //    m3 before m4, nothing lost or doubled.
  const m2 = chatMessage(nonce, 'm2', ub, 'from B ✓');
  const m3 = chatMessage(nonce, 'm3', ua, 'from A ①');
  const m4 = chatMessage(nonce, 'm4', ua, 'from A ②');
  const beforeM2 = marks(A, B, A2);
  B.emit('writeMessage', { message: m2.message, username: ub });
  A.emit('writeMessage', { message: m3.message, username: ua });
  A.emit('writeMessage', { message: m4.message, username: ua });
  const batch = [m1, m2, m3, m4];
  const finals = new Map();
  for (const m of [m2, m3, m4]) {
    const w = await written(m, [A, A2, B], beforeM2);
    for (const [c, got] of w) {
      const list = got.payload.messagesList;
      if (!finals.has(c) || got.index > finals.get(c).index) finals.set(c, got);
      r.check('HIST-2', `${c.label}: the list ending in ${m.tag} has no message twice`,
        new Set(ourMessages(list, batch)).size === ourMessages(list, batch).length,
        'each once', show(ourMessages(list, batch)));
    }
  }
  // A2's first messageWritten after its connected is its barrier.
  const a2Barrier = A2.log.findIndex((e, i) => i > a2Conn.index && e.name === 'messageWritten');
  const a2JoinedOwn = A2.events('joined', a2Conn.index + 1, a2Barrier);
  r.check('JOIN-1', 'A2 gets no joined for its own join', a2JoinedOwn.length === 0, 'none', show(a2JoinedOwn.map((e) => e.args)));
  for (const c of [A, A2, B]) {
    const n = c.events('messageWritten', beforeM2.get(c)).filter((e) => [m2, m3, m4].some((m) => endsWith(m)(e.args[0]))).length;
    r.check('MSG-1', `${c.label} gets messageWritten once per message`, n === 3, 3, n);
  }
  const orders = [A, A2, B].map((c) => ourMessages(finals.get(c).payload.messagesList, batch).join(','));
  r.check('HIST-2', 'A: the final list holds m1..m4', ['m1', 'm2', 'm3', 'm4'].every((t) => orders[0].split(',').includes(t)),
    'm1..m4', orders[0]);
  r.check('HIST-1', 'A, A2 and B see the same order', orders.every((o) => o === orders[0]), orders[0], show(orders));
  const o = orders[0].split(',');
  r.check('HIST-1', 'A\'s m3 comes before m4, after m1', o.indexOf('m1') < o.indexOf('m3') && o.indexOf('m3') < o.indexOf('m4'),
    'm1 < m3 < m4', orders[0]);

  // 7. Bad input from B: no payload, then a number. The server may answer
  //    with a report to B only (ERR-1 leaves the format open: the
  //    reference's chatError, an exception or notice event, any event that
  //    is not a chat event) or nothing, must not store anything, and must
  //    keep serving: B's next message (m5) is the barrier.
  const m5 = chatMessage(nonce, 'm5', ub, 'from B after bad input');
  const beforeBad = marks(A, A2, B);
  B.emit('writeMessage');
  B.emit('writeMessage', 42);
  B.emit('writeMessage', { message: m5.message, username: ub });
  const w5 = await written(m5, [A, A2, B], beforeBad);
  const bBetween = B.log.slice(beforeBad.get(B), w5.get(B).index);
  const ours = [ua, ub, uc];
  // On a shared server other users may write meanwhile; their well-formed
  // messages are not strays.
  const foreign = (e) => {
    const l = e.name === 'messageWritten' && isObj(e.args[0]) ? e.args[0].messagesList : undefined;
    const last = Array.isArray(l) ? l[l.length - 1] : undefined;
    return isObj(last) && typeof last.username === 'string' && typeof last.message === 'string' && !ours.includes(last.username);
  };
  const chatEvents = ['connected', 'joined', 'messageWritten', 'disconnected'];
  const strays = bBetween.filter((e) => chatEvents.includes(e.name) && !['joined', 'disconnected'].includes(e.name) && !foreign(e));
  r.check('ROB-2', 'B: bad writeMessage gets a report or nothing, never a chat event', strays.length === 0,
    'a report (any non-chat event) or nothing', show(strays.map((e) => [e.name, ...e.args])));
  // Whatever B was told, under whichever event names, is B's alone.
  const reportNames = [...new Set(bBetween.filter((e) => !chatEvents.includes(e.name)).map((e) => e.name))];
  for (const c of [A, A2]) {
    const leaked = reportNames.flatMap((name) => c.events(name, beforeBad.get(c), w5.get(c).index));
    r.check('ERR-1', `${c.label} gets none of the reports B got for its bad input (${reportNames.join(', ') || 'none sent'})`,
      leaked.length === 0, 'none', show(leaked.map((e) => [e.name, ...e.args])));
  }
  const after = ourMessages(w5.get(A).payload.messagesList, [...batch, m5]);
  r.check('ROB-2', 'no message stored for bad input', after.join() === `${orders[0]},m5`, `${orders[0]},m5`, after.join());
  // Everything between our last good message before the bad input and m5
  // must be someone else's well-formed message.
  const l5 = w5.get(A).payload.messagesList;
  const lastGood = Math.max(...[m1, m2, m3, m4].map((m) => l5.findIndex((e) => isMessage(e, m))));
  const junk = l5.slice(lastGood + 1, -1).filter((e) => !isObj(e) || typeof e.username !== 'string' ||
    typeof e.message !== 'string' || ours.includes(e.username));
  r.check('ROB-2', 'nothing stored between m4 and m5 for the bad input', junk.length === 0, 'nothing', show(junk));
  r.ok('ROB-1', 'server still serves every socket after bad input');

  // 8. A late joiner, after a repeated init GET: history and users survive.
  await initGet(cfg, r, 'repeated');
  const C = await open('C');
  from = marks(A, A2, B);
  const cConn = await join(C, uc, 'C (late joiner)');
  const cUsers = names(cConn.payload.connectedUserList);
  r.check('USER-2', 'C: connected lists A, B, C once each, in join order',
    [ua, ub, uc].every((u) => count(cUsers, u) === 1) && cUsers.indexOf(ua) < cUsers.indexOf(ub) && cUsers.indexOf(ub) < cUsers.indexOf(uc),
    `[..${ua}..${ub}..${uc}..]`, show(cUsers));
  const cHist = ourMessages(cConn.payload.messagesList, [...batch, m5]).join(',');
  r.check('HIST-3', 'C: connected.messagesList holds m1..m5 in the others\' order', cHist === `${orders[0]},m5`,
    `${orders[0]},m5`, cHist);
  for (const c of [A, A2, B]) {
    const j = await c.next('joined', from.get(c), (p) => listsUser(p, uc));
    r.check('JOIN-3', `${c.label} gets joined listing C`, j !== undefined, `joined with ${uc}`, c.closed || 'timeout');
  }

  // 9. Leaving. A2 goes first while A still holds the username (USER-4):
  //    the server sends nothing or a list still holding A. The server sends
  //    nothing observable for that, so this step alone uses a short window.
  from = marks(A, B, C);
  A2.close();
  await sleep(Math.min(300, Math.max(0, deadline - Date.now())));
  // Then B leaves: A and C get disconnected without B, still with A.
  B.close();
  for (const c of [A, C]) {
    const d = await c.next('disconnected', from.get(c), (p) => p && Array.isArray(p.connectedUserList) && !names(p.connectedUserList).includes(ub));
    r.check('USER-3', `${c.label} gets disconnected without B`, d !== undefined, `disconnected without ${ub}`,
      () => `${c.closed || 'timeout'}; disconnected lists ${show(c.events('disconnected', from.get(c)).map((e) => names(e.args[0] && e.args[0].connectedUserList)))}`);
    const lists = c.events('disconnected', from.get(c)).map((e) => names(e.args[0] && e.args[0].connectedUserList));
    r.check('USER-4', `${c.label}: A stays listed after A2 (same username) left`, lists.every((l) => Array.isArray(l) && l.includes(ua)),
      `every list with ${ua}`, show(lists));
  }
  // B comes back on a new socket: it is listed last now, and gets the whole
  // history (USER-2, RECON-1 without the drop).
  const B2 = await open('B2');
  from = marks(C);
  const b2Conn = await join(B2, ub, 'B2 (B back on a new socket)');
  const b2Users = names(b2Conn.payload.connectedUserList);
  // Whether A is still listed is USER-4's business, checked above.
  r.check('USER-2', 'B2: B is listed after C now', count(b2Users, ub) === 1 && b2Users.indexOf(uc) >= 0 &&
    b2Users.indexOf(uc) < b2Users.indexOf(ub) && (!b2Users.includes(ua) || b2Users.indexOf(ua) < b2Users.indexOf(uc)),
  `[..${ua}..${uc}..${ub}..]`, show(b2Users));
  const b2Hist = ourMessages(b2Conn.payload.messagesList, [...batch, m5]).join(',');
  r.check('HIST-3', 'B2: connected.messagesList still holds m1..m5 in order', b2Hist === `${orders[0]},m5`,
    `${orders[0]},m5`, b2Hist);
  const cJoinedB2 = await C.next('joined', from.get(C), (p) => listsUser(p, ub));
  r.check('JOIN-3', 'C gets joined listing B again', cJoinedB2 !== undefined, `joined with ${ub}`, C.closed || 'timeout');
  // Long after A2 left, A is still there: the same USER-4 question as above,
  // now behind real events rather than a window.
  r.check('USER-4', 'B2: connected still lists A (A2 left, A stays)', b2Users.includes(ua), `a list with ${ua}`, show(b2Users));
  if (cJoinedB2) {
    const l = names(cJoinedB2.payload.connectedUserList);
    r.check('USER-4', 'C: joined for B2 still lists A', l.includes(ua), `a list with ${ua}`, show(l));
  }

  // Last, A leaves: now the username is gone.
  from = marks(C, B2);
  A.close();
  for (const c of [C, B2]) {
    const dA = await c.next('disconnected', from.get(c), (p) => p && Array.isArray(p.connectedUserList) && !names(p.connectedUserList).includes(ua));
    r.check('USER-3', `${c.label} gets disconnected without A once its last socket left`, dA !== undefined, `disconnected without ${ua}`,
      () => `${c.closed || 'timeout'}; disconnected lists ${show(c.events('disconnected', from.get(c)).map((e) => names(e.args[0] && e.args[0].connectedUserList)))}`);
    if (dA) {
      const l = names(dA.payload.connectedUserList);
      r.check('USER-2', `${c.label}: that list is C then B`, l.indexOf(uc) >= 0 && l.indexOf(uc) < l.indexOf(ub),
        `[..${uc}..${ub}..]`, show(l));
    }
  }

  if (cfg.extended) await extendedPhase({ cfg, r, nonce, open, join, written, marks, endsWith });

  // Every contract event any client received has the contract's shape.
  let shaped = 0;
  const bad = [];
  for (const c of clients) {
    for (const e of c.log) {
      if (!(e.name in SHAPES)) continue;
      shaped++;
      const why = shapeError(e.name, e.args);
      if (why) bad.push(`${c.label} ${e.name}: ${why}`);
    }
  }
  r.check('PAY-1', `all ${shaped} chat events carry one object with the contract's fields`, bad.length === 0,
    'none malformed', show(bad.slice(0, 5)));
  if (cfg.transport === 'polling') {
    r.check('TRANS-1', 'C stayed on polling throughout', C.transportName() === 'polling', 'polling', C.transportName());
  }
}

// extendedPhase checks the contract's robust and security grades (ROB, SEC,
// ERR-1) in the reference's error format: chatError {event, code, message}
// and acks {ok, code, message}. The format is open in the contract, so these
// run only with --extended; servers that report errors differently may
// fail them without breaking the contract's core.
async function extendedPhase({ cfg, r, nonce, open, join, written, marks, endsWith }) {
  const ux = `js-x-${nonce}`;
  const uy = `js-y-${nonce}`;
  const ackMs = Math.min(cfg.stepTimeout, 2000);
  // ask emits with an acknowledgement; a missing ack resolves to
  // {timeout: true} after ackMs.
  const ask = async (c, ...args) => {
    try {
      return await c.socket.timeout(ackMs).emitWithAck(...args);
    } catch (err) {
      return { timeout: true, error: err.message };
    }
  };
  const refused = (a, codes) => isObj(a) && a.ok === false && typeof a.message === 'string' &&
    (codes === undefined ? typeof a.code === 'string' : codes.includes(a.code));

  const X = await open('X');
  await join(X, ux, 'X');
  const Y = await open('Y');

  // SEC-2: writing before joining is refused, with chatError to Y.
  const tNJ = `not joined ${nonce}`;
  let fromY = Y.log.length;
  const aNJ = await ask(Y, 'writeMessage', { message: tNJ, username: uy });
  r.check('SEC-2', 'Y (not joined): writeMessage is refused with not_joined', refused(aNJ, ['not_joined']),
    '{ok:false, code:"not_joined"}', show(aNJ));
  const eNJ = await Y.next('chatError', fromY);
  r.check('ERR-1', 'Y gets chatError {event, code, message} for it',
    eNJ && eNJ.payload.event === 'writeMessage' && eNJ.payload.code === 'not_joined' && typeof eNJ.payload.message === 'string',
    '{event:"writeMessage", code:"not_joined", message}', eNJ ? show(eNJ.payload) : 'none');

  // ROB-1/2, SEC-3: bad connecting payloads are refused and list nobody.
  const deep = {};
  let cur = deep;
  for (let i = 0; i < 500; i++) cur = cur.a = {};
  const badJoins = [
    ['no payload', []],
    ['null', [null]],
    ['a number', [42]],
    ['a string', ['str']],
    ['an array', [[{ username: uy }]]],
    ['{}', [{}]],
    ['username 42', [{ username: 42 }]],
    ['username object', [{ username: { toString: 'x' } }]],
    ['own __proto__ key', [JSON.parse(`{"__proto__": {"username": "evil-${nonce}"}}`)]],
    ['500-deep object', [deep]],
    ['username of 1000 chars (SEC-3)', [{ username: `long-${nonce}-`.padEnd(1000, 'x') }]],
  ];
  for (const [what, args] of badJoins) {
    const a = await ask(Y, 'connecting', ...args);
    r.check(what.includes('SEC-3') ? 'SEC-3' : 'ROB-2', `connecting with ${what} is refused`, refused(a),
      '{ok:false, code, message}', show(a));
  }
  const aUnknown = await ask(Y, `noSuchEvent-${nonce}`, { username: uy });
  r.check('ERR-1', 'an unknown event is refused with unknown_event', refused(aUnknown, ['unknown_event']),
    '{ok:false, code:"unknown_event"}', show(aUnknown));
  fromY = Y.log.length;
  const fromX = X.log.length;
  const yConn = await join(Y, uy, 'Y after bad input');
  const yUsers = names(yConn.payload.connectedUserList);
  r.check('ROB-2', 'Y: connected lists Y once and no junk user',
    count(yUsers, uy) === 1 && !yUsers.some((u) => typeof u !== 'string' || u.startsWith(`evil-${nonce}`) || u.startsWith(`long-${nonce}`)),
    `${uy} once, no evil-/long- users`, show(yUsers));
  const xJoined = await X.next('joined', fromX, (p) => listsUser(p, uy));
  r.check('ROB-1', 'X gets joined for Y after Y\'s bad input', xJoined !== undefined, `joined with ${uy}`, X.closed || 'timeout');

  // SEC-1: Y cannot write as X; then bad writeMessage payloads; a good
  // message acked {ok:true} is the barrier.
  const tSpoof = `spoof ${nonce}`;
  const aSpoof = await ask(Y, 'writeMessage', { message: tSpoof, username: ux });
  const tooLong = `too long ${nonce} `.padEnd(20000, 'y');
  const badWrites = [
    ['no payload', []],
    ['null', [null]],
    ['a number', [42]],
    ['a string', ['str']],
    ['an array', [[{ message: 'arr', username: uy }]]],
    ['message 42', [{ message: 42, username: uy }]],
    ['no message', [{ username: uy }]],
    ['username 42', [{ message: `u42 ${nonce}`, username: 42 }]],
    ['own __proto__ key', [JSON.parse(`{"__proto__": {"message": "proto ${nonce}", "username": "${uy}"}}`)]],
    ['500-deep object', [{ message: deep, username: uy }]],
  ];
  for (const [what, args] of badWrites) {
    const a = await ask(Y, 'writeMessage', ...args);
    r.check('ROB-2', `writeMessage with ${what} is refused`, refused(a), '{ok:false, code, message}', show(a));
  }
  const aLong = await ask(Y, 'writeMessage', { message: tooLong, username: uy });
  r.check('SEC-3', 'a 20000-character message is refused with message_too_long', refused(aLong, ['message_too_long']),
    '{ok:false, code:"message_too_long"}', show(aLong));
  const mGood = chatMessage(nonce, 'y1', uy, 'after bad writes');
  const before = marks(X, Y);
  const aGood = await ask(Y, 'writeMessage', { message: mGood.message, username: uy });
  r.check('ERR-1', 'a good writeMessage is acked {ok:true}', isObj(aGood) && aGood.ok === true, '{ok:true}', show(aGood));
  const wGood = await written(mGood, [X, Y], before);
  const xl = wGood.get(X).payload.messagesList;
  const spoofed = xl.filter((e) => isObj(e) && e.message === tSpoof);
  r.check('SEC-1', 'Y\'s message under X\'s username is refused or rewritten to Y',
    spoofed.every((e) => e.username === uy) && (spoofed.length > 0 || refused(aSpoof, ['username_mismatch'])),
    `refused (username_mismatch) or stored as ${uy}`, `ack ${show(aSpoof)}, stored ${show(spoofed)}`);
  const junk = xl.filter((e) => !isObj(e) || typeof e.username !== 'string' || typeof e.message !== 'string' ||
    [tNJ, tooLong, `u42 ${nonce}`, `proto ${nonce}`, 'arr'].includes(e.message));
  r.check('ROB-2', 'no refused message was stored', junk.length === 0, 'none', show(junk));

  // ROB-1: malformed Socket.IO packets on a throwaway socket; the server may
  // drop that socket but must keep serving the others.
  const Z = await open('Z');
  Z.socket.io.engine.write('2["writeMessage",{"message":');
  Z.socket.io.engine.write('9garbage');
  const mAfter = chatMessage(nonce, 'x1', ux, 'after malformed packets');
  const beforeX1 = marks(X, Y);
  X.emit('writeMessage', { message: mAfter.message, username: ux });
  await written(mAfter, [X, Y], beforeX1);
  r.ok('ROB-1', 'X and Y are still served after malformed packets');

  // ROB-2: a client-sent reserved event name ("disconnect") must not make
  // the server drop a user whose connection stays open. Closing that
  // connection (what socket.io's parser does) is fine; then W is gone for real.
  const uw = `js-w-${nonce}`;
  const W = await open('W');
  await join(W, uw, 'W');
  const mW = chatMessage(nonce, 'w1', uw, 'after a fake disconnect');
  const fromXW = X.log.length;
  W.socket.io.engine.write('2["disconnect","io client disconnect"]');
  W.emit('writeMessage', { message: mW.message, username: uw });
  // W's own waiters wake on its close and on its own messageWritten; X gets
  // that same broadcast before or after W, so wait for X's copy next.
  const fromW = W.log.length;
  await W.until(() => W.closed !== null || W.log.slice(fromW).some((e) => e.name === 'messageWritten' && endsWith(mW)(e.args[0])));
  const settled = W.closed !== null || (await X.next('messageWritten', fromXW, endsWith(mW))) !== undefined;
  const dropped = X.events('disconnected', fromXW).filter((e) => !listsUser(e.args[0], uw));
  r.check('ROB-2', 'a client-sent "disconnect" event closes the connection or changes nothing',
    settled && (W.closed !== null || dropped.length === 0),
    `W closed, or W still listed`, `W ${W.closed === null ? 'open' : `closed (${W.closed})`}, X saw ${dropped.length} disconnected without W`);

  // SEC-4: a flood from one socket is rate-limited. Every writeMessage ends
  // either as a messageWritten to Y or as a chatError on Y: wait for all.
  const N = 300;
  const fromFlood = Y.log.length;
  const floodTag = `flood-${nonce}-`;
  for (let i = 0; i < N; i++) Y.emit('writeMessage', { message: `${floodTag}${i}`, username: uy });
  const tally = () => {
    let accepted = 0;
    let limited = 0;
    let other = 0;
    for (const e of Y.log.slice(fromFlood)) {
      if (e.name === 'chatError') {
        if (isObj(e.args[0]) && e.args[0].code === 'rate_limited') limited++;
        else other++;
      } else if (e.name === 'messageWritten') {
        const l = isObj(e.args[0]) ? e.args[0].messagesList : undefined;
        const last = Array.isArray(l) ? l[l.length - 1] : undefined;
        if (isObj(last) && typeof last.message === 'string' && last.message.startsWith(floodTag)) accepted++;
      }
    }
    return { accepted, limited, other };
  };
  await Y.until(() => {
    const t = tally();
    return t.accepted + t.limited + t.other >= N;
  });
  const t = tally();
  r.check('SEC-4', `a flood of ${N} messages is rate-limited (${t.accepted} accepted, ${t.limited} rate_limited)`,
    t.limited > 0 && t.accepted > 0 && t.accepted + t.limited === N,
    `some accepted, the rest refused with rate_limited, ${N} in all`, show(t));
}

async function main(argv) {
  let cfg;
  try {
    cfg = parseConfig(argv);
  } catch (err) {
    process.stderr.write(`check.js: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (cfg.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const r = new Results((line) => process.stdout.write(`${line}\n`));
  const deadline = Date.now() + cfg.timeout;
  const clients = [];
  // The watchdog ends a run that hangs anywhere, including in code paths the
  // bounded waits do not cover.
  const watchdog = setTimeout(() => {
    r.fail('RUN', 'whole run', `done within ${cfg.timeout} ms`, 'still running');
    process.stdout.write(`${r.passed} passed, ${r.failed} failed\n`);
    process.exit(1);
  }, cfg.timeout + 1000);
  try {
    await scenario(cfg, r, deadline, clients);
  } catch (err) {
    if (!(err instanceof Abort)) r.fail('RUN', 'scenario', 'no exception', err && err.stack);
    else process.stdout.write(`stopped: the steps after "${err.message}" depend on it\n`);
  } finally {
    clearTimeout(watchdog);
    for (const c of clients) c.close();
  }
  process.stdout.write(`${r.passed} passed, ${r.failed} failed\n`);
  return r.failed === 0 && r.passed > 0 ? 0 : 1;
}

main(process.argv.slice(2)).then((code) => process.exit(code));
