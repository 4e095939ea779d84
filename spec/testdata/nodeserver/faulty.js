#!/usr/bin/env node
// server.js with one contract rule broken on purpose, so tests can prove a
// check catches that fault (mutation testing for the checks themselves).
//
// Usage: node faulty.js --fault NAME [server.js flags]
// Prints the same "listening" line as server.js.
'use strict';

const { Chat, main } = require('./server.js');

// Each fault replaces one Chat method; the comment names the requirement a
// correct check must then report as failed.
const FAULTS = {
  // USER-1: one list entry per socket, so a username held twice shows twice.
  'dup-users'(proto) {
    proto.userList = function userList() {
      return Array.from(this.users.entries()).flatMap(([username, ids]) => Array.from(ids, () => ({ username })));
    };
  },
  // USER-2: newest user first.
  'reverse-users'(proto) {
    proto.userList = function userList() {
      return Array.from(this.users.keys(), (username) => ({ username })).reverse();
    };
  },
  // USER-3: nobody ever leaves the list.
  'keep-users'(proto) {
    proto.leave = () => false;
  },
  // USER-4: the seed's rule, a username goes when any one socket leaves.
  'leave-early'(proto) {
    proto.leave = function leave(socketId, username) {
      return this.users.delete(username);
    };
  },
  // PAY-3: text is "tidied" (trimmed, HTML escaped).
  'rewrite-text'(proto) {
    const append = proto.append;
    proto.append = function rewritten(username, message) {
      append.call(this, username, message.trim().replaceAll('<', '&lt;'));
    };
  },
  // MSG-2: username and message swapped.
  'swap-fields'(proto) {
    const append = proto.append;
    proto.append = function swapped(username, message) {
      append.call(this, message, username);
    };
  },
  // HIST-2/3: history is lost: every list holds only the newest message.
  'no-history'(proto) {
    proto.messagesList = function messagesList() {
      const last = this.history[this.history.length - 1];
      return last ? [{ username: last.username, message: last.message }] : [];
    };
  },
  // HIST-2: every 10th message is never stored, so the broadcast that
  // follows carries the list without it (a lossy queue); `chatspec load`
  // counts the losses (spec/interop/load_test.go).
  'drop-tenth'(proto) {
    const append = proto.append;
    let n = 0;
    proto.append = function dropping(username, message) {
      n += 1;
      if (n % 10 !== 0) append.call(this, username, message);
    };
  },
  // HIST-1: newest message first.
  'reverse-history'(proto) {
    const list = proto.messagesList;
    proto.messagesList = function messagesList() {
      return list.call(this).reverse();
    };
  },
};

const argv = process.argv.slice(2);
const i = argv.indexOf('--fault');
const name = i >= 0 ? argv[i + 1] : undefined;
if (!Object.hasOwn(FAULTS, name ?? '')) {
  process.stderr.write(`faulty.js: --fault ${JSON.stringify(name)}: want one of ${Object.keys(FAULTS).join(', ')}\n`);
  process.exit(2);
}
argv.splice(i, 2);
FAULTS[name](Chat.prototype);
const code = main(argv);
if (code !== undefined) process.exitCode = code;
