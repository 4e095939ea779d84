#!/usr/bin/python3
"""An independent implementation of the chat contract (spec/CONTRACT.md) on
another stack: python-socketio 5 / python-engineio 4 on aiohttp, from
Debian's packages (python3-socketio, python3-aiohttp). It was written from
the contract text alone, so that chatspec is checked against a server that
shares no code and no habits with the Go reference or the Node server.

Where CONTRACT.md §8 leaves a choice open, this server chooses differently
from the others, on purpose:
  - objects carry extra fields and another key order: messages are
    {"message", "username", "id", "at"}, users {"username", "since"};
  - chat events go to joined sockets only (a room), never to unjoined ones;
  - a refusal is reported as a "notice" event {"level", "event", "reason",
    "detail"} to the offending socket and, when it asked for one, as an
    acknowledgement {"error": reason};
  - history keeps the newest 120 messages; usernames up to 40 code points,
    messages up to 2000; a token bucket of 20 writes refilled at 10/s;
  - a socket that leaves while its username is still held elsewhere, or
    that never joined, causes no event at all;
  - python-engineio checks ping timeouts lazily and does not announce
    maxPayload in its handshake: both legal, both once tripped chatspec.

Usage:
  /usr/bin/python3 server.py --port N [--host 127.0.0.1] [--path /socket.io/]
      [--init-path /api/socket] [--ping-interval MS] [--ping-timeout MS]
      [--history-limit N] [--transports polling,websocket]

Prints "listening http://HOST:PORT" on stdout once it accepts connections.
SIGTERM and SIGINT stop it.
"""

import argparse
import asyncio
import signal
import sys
import time

import socketio
from aiohttp import web


def parse_args(argv):
    p = argparse.ArgumentParser(description="chat contract server on python-socketio")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True, help="TCP port (0 picks a free one)")
    p.add_argument("--path", default="/socket.io/", help="Socket.IO path")
    p.add_argument("--init-path", default="/api/socket", help='answered 200 to a GET ("" disables it)')
    p.add_argument("--ping-interval", type=int, default=25000, help="Engine.IO pingInterval, ms")
    p.add_argument("--ping-timeout", type=int, default=20000, help="Engine.IO pingTimeout, ms")
    p.add_argument("--history-limit", type=int, default=120, help="newest messages kept (at least 50)")
    p.add_argument("--max-username", type=int, default=40, help="longest username, code points")
    p.add_argument("--max-message", type=int, default=2000, help="longest message, code points")
    p.add_argument("--max-http-buffer", type=int, default=150000, help="largest packet, bytes")
    p.add_argument("--rate-burst", type=int, default=20, help="writes a socket may send at once")
    p.add_argument("--rate-per-second", type=float, default=10.0, help="write refill rate")
    p.add_argument("--transports", default="polling,websocket", help="enabled transports")
    a = p.parse_args(argv)
    if not 0 <= a.port <= 65535:
        p.error(f"--port {a.port}: want 0..65535")
    if a.ping_interval <= 0 or a.ping_timeout <= 0:
        p.error("--ping-interval and --ping-timeout: want positive milliseconds")
    if a.history_limit < 50:
        p.error(f"--history-limit {a.history_limit}: want at least 50 (CONTRACT.md HIST-4)")
    if a.rate_burst < 10:
        p.error(f"--rate-burst {a.rate_burst}: want at least 10 (CONTRACT.md SEC-5)")
    transports = [t.strip() for t in a.transports.split(",") if t.strip()]
    if not transports or any(t not in ("polling", "websocket") for t in transports):
        p.error(f"--transports {a.transports!r}: want polling and/or websocket")
    a.transports = transports
    return a


class Refused(Exception):
    """A refusal reported to the offending socket (ERR-1)."""

    def __init__(self, reason, detail):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Chat:
    """The chat state: ordered users (each with the sockets holding it) and
    a capped history. Every mutation happens before the first await of a
    handler, so the order in which a socket's events arrive is the order in
    which they change the state."""

    ROOM = "joined"

    def __init__(self, sio, cfg):
        self.sio = sio
        self.cfg = cfg
        self.users = {}  # username -> {"since": float, "sids": set}; dict keeps join order
        self.history = []
        self.next_id = 1
        self.sockets = {}  # sid -> {"username": str or None, "tokens": float, "at": float}

    def user_list(self):
        return [{"username": name, "since": u["since"]} for name, u in self.users.items()]

    def messages(self):
        return list(self.history)

    async def refuse(self, sid, event, err):
        await self.sio.emit("notice", {"level": "error", "event": event, "reason": err.reason, "detail": err.detail}, to=sid)
        return {"error": err.reason}

    def payload(self, event, args):
        if len(args) != 1 or not isinstance(args[0], dict):
            raise Refused("bad_payload", f"{event} takes one object argument")
        return args[0]

    def text(self, obj, key, limit):
        v = obj.get(key)
        if not isinstance(v, str):
            raise Refused("bad_field", f"{key} must be a string")
        n = len(v)  # Python strings count code points
        if n == 0 or n > limit:
            raise Refused("bad_length", f"{key} must have 1..{limit} characters")
        return v

    async def on_connect(self, sid, environ, auth=None):
        self.sockets[sid] = {"username": None, "tokens": float(self.cfg.rate_burst), "at": time.monotonic()}

    async def on_connecting(self, sid, *args):
        try:
            name = self.text(self.payload("connecting", args), "username", self.cfg.max_username)
            sock = self.sockets.get(sid)
            if sock is None:
                raise Refused("gone", "the socket is closing")
            if sock["username"] is not None and sock["username"] != name:
                raise Refused("already_joined", f"this socket joined as {sock['username']!r}")
        except Refused as err:
            return await self.refuse(sid, "connecting", err)
        again = sock["username"] == name
        sock["username"] = name
        user = self.users.get(name)
        if user is None:
            user = self.users[name] = {"since": round(time.time(), 3), "sids": set()}
        user["sids"].add(sid)
        users, msgs = self.user_list(), self.messages()
        self.sio.enter_room(sid, self.ROOM)
        await self.sio.emit("connected", {"messagesList": msgs, "connectedUserList": users, "you": name}, to=sid)
        if not again:
            await self.sio.emit("joined", {"connectedUserList": users}, room=self.ROOM, skip_sid=sid)
        return {"ok": True}

    def take_token(self, sock):
        now = time.monotonic()
        sock["tokens"] = min(float(self.cfg.rate_burst), sock["tokens"] + (now - sock["at"]) * self.cfg.rate_per_second)
        sock["at"] = now
        if sock["tokens"] < 1:
            return False
        sock["tokens"] -= 1
        return True

    async def on_write(self, sid, *args):
        try:
            obj = self.payload("writeMessage", args)
            sock = self.sockets.get(sid)
            if sock is None or sock["username"] is None:
                raise Refused("not_joined", "join with connecting first")
            name = obj.get("username")
            if name != sock["username"]:
                raise Refused("wrong_username", "you may write only under your own username")
            text = self.text(obj, "message", self.cfg.max_message)
            if not self.take_token(sock):
                raise Refused("too_fast", "slow down")
        except Refused as err:
            return await self.refuse(sid, "writeMessage", err)
        self.history.append({"message": text, "username": name, "id": self.next_id, "at": round(time.time(), 3)})
        self.next_id += 1
        del self.history[: max(0, len(self.history) - self.cfg.history_limit)]
        await self.sio.emit("messageWritten", {"messagesList": self.messages()}, room=self.ROOM)
        return {"ok": True}

    async def on_disconnect(self, sid):
        sock = self.sockets.pop(sid, None)
        if sock is None or sock["username"] is None:
            return  # never joined: nobody to remove, nothing to say
        name = sock["username"]
        user = self.users.get(name)
        if user is None:
            return
        user["sids"].discard(sid)
        if user["sids"]:
            return  # still held by another socket (USER-4)
        del self.users[name]
        await self.sio.emit("disconnected", {"connectedUserList": self.user_list()}, room=self.ROOM, skip_sid=sid)


async def main(argv):
    cfg = parse_args(argv)
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        cors_allowed_origins="*",
        ping_interval=cfg.ping_interval / 1000,
        ping_timeout=cfg.ping_timeout / 1000,
        max_http_buffer_size=cfg.max_http_buffer,
        transports=cfg.transports,
        logger=False,
        engineio_logger=False,
    )
    chat = Chat(sio, cfg)
    sio.on("connect", chat.on_connect)
    sio.on("connecting", chat.on_connecting)
    sio.on("writeMessage", chat.on_write)
    sio.on("disconnect", chat.on_disconnect)

    app = web.Application()
    sio.attach(app, socketio_path=cfg.path.strip("/"))
    if cfg.init_path:
        async def init(request):
            return web.Response(text="socket ready\n")
        app.router.add_get(cfg.init_path, init)

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, cfg.host, cfg.port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(f"listening http://{cfg.host}:{port}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1:]))
    except KeyboardInterrupt:
        pass
