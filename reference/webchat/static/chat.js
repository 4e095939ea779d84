// The chat page of spec/CONTRACT.md: one Socket.IO connection, the
// contract's events, every server string rendered as text.
//
// Query parameters (all optional):
//   server  base URL of any contract server (default: the page's origin);
//           a server on another origin must allow this page's origin (CORS)
//           for long-polling: `chatspec serve --cors-origin ...`.
//   path    its Socket.IO path (default: the serving reference's --path).
//   init    a route to GET once before connecting, for servers built like
//           the seed (CONN-2), e.g. init=/api/socket.
//
// ONE connection per page, on purpose: the seed's page opens two (its
// React hook calls io() twice), so every tab is two sockets and, when one
// of them drops, the other still holds the username and the rest of the
// room sees a ghost (issue 16). Here io() is called once, and the
// `connecting` event is re-sent on every `connect`, so a reconnect after a
// drop joins again under the same name (RECON-1).
(function () {
  'use strict';

  var MAX_RENDERED = 1000; // a server's history list is untrusted: cap the DOM

  var params = new URLSearchParams(location.search);
  var meta = function (name) {
    var el = document.querySelector('meta[name="' + name + '"]');
    return el ? el.content : '';
  };
  var serverURL = params.get('server') || location.origin;
  var ioPath = params.get('path') || meta('chatspec-path') || '/socket.io/';
  var initPath = params.has('init') ? params.get('init') : meta('chatspec-init-path');

  var $ = function (id) { return document.getElementById(id); };
  var statusEl = $('status'), errorEl = $('error');
  var username = '';
  var socket = null;
  var everJoined = false;
  var retryDelay = 1000;

  $('server').textContent = serverURL + ioPath;

  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = text;
  }

  function showError(text) {
    errorEl.textContent = text;
    errorEl.hidden = false;
  }

  function clearError() {
    errorEl.hidden = true;
    errorEl.textContent = '';
  }

  function asList(v) { return Array.isArray(v) ? v : null; }
  function str(v) { return typeof v === 'string' ? v : String(v); }

  function renderUsers(list) {
    list = asList(list);
    if (!list) { showError('the server sent a user list that is not a list'); return; }
    var frag = document.createDocumentFragment();
    list.slice(-MAX_RENDERED).forEach(function (u) {
      var li = document.createElement('li');
      var name = u && typeof u === 'object' ? str(u.username) : str(u);
      li.textContent = name;
      if (name === username) li.className = 'me';
      frag.appendChild(li);
    });
    $('users').replaceChildren(frag);
    $('user-count').textContent = '(' + list.length + ')';
  }

  function renderMessages(list) {
    list = asList(list);
    if (!list) { showError('the server sent a message list that is not a list'); return; }
    var box = $('messages');
    var atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 40;
    var frag = document.createDocumentFragment();
    list.slice(-MAX_RENDERED).forEach(function (m) {
      m = m && typeof m === 'object' ? m : { username: '?', message: str(m) };
      var li = document.createElement('li');
      var author = document.createElement('span');
      author.className = 'author';
      author.textContent = str(m.username);
      var text = document.createElement('span');
      text.className = 'text';
      text.textContent = str(m.message);
      if (m.username === username) li.className = 'mine';
      li.append(author, text);
      frag.appendChild(li);
    });
    box.replaceChildren(frag);
    if (atBottom) box.scrollTop = box.scrollHeight;
  }

  // refusal formats ERR-1 allows: the reference's chatError event and its
  // negative acknowledgement; any other server gets its text shown as is.
  function refusal(p) {
    if (p && typeof p === 'object') {
      var what = p.event ? ' (' + str(p.event) + ')' : '';
      var code = p.code ? ' [' + str(p.code) + ']' : '';
      return 'refused' + what + ': ' + str(p.message || 'no reason given') + code;
    }
    return 'refused: ' + str(p);
  }

  function transportName() {
    return socket && socket.io.engine && socket.io.engine.transport ? socket.io.engine.transport.name : '';
  }

  function connect() {
    // The one io() call of this page (see the comment at the top).
    socket = io(serverURL, { path: ioPath, reconnectionDelayMax: 10000 });

    socket.on('connect', function () {
      document.body.dataset.transport = transportName();
      socket.io.engine.once('upgrade', function (t) { document.body.dataset.transport = t.name; });
      setStatus('joining', 'joining as ' + username + '…');
      socket.emit('connecting', { username: username });
    });
    socket.on('connected', function (p) {
      if (!p || typeof p !== 'object') { showError('the server sent a malformed connected event'); return; }
      everJoined = true;
      document.body.dataset.joins = String(Number(document.body.dataset.joins || 0) + 1);
      retryDelay = 1000;
      clearError();
      setStatus('joined', 'joined as ' + username);
      renderUsers(p.connectedUserList);
      renderMessages(p.messagesList);
    });
    socket.on('joined', function (p) { if (p) renderUsers(p.connectedUserList); });
    socket.on('disconnected', function (p) { if (p) renderUsers(p.connectedUserList); });
    socket.on('messageWritten', function (p) { if (p) renderMessages(p.messagesList); });
    socket.on('chatError', function (p) { showError(refusal(p)); });
    socket.on('connect_error', function (err) {
      setStatus('error', 'cannot connect: ' + str(err && err.message));
      if (!socket.active) showError('the server refused the connection: ' + str(err && err.message));
    });
    socket.on('disconnect', function (reason) {
      setStatus('reconnecting', (everJoined ? 'connection lost (' : 'disconnected (') + reason + '), reconnecting…');
      if (reason === 'io server disconnect') {
        // The server closed this socket on purpose; Socket.IO does not
        // retry that by itself. Retry with a growing pause so a server that
        // keeps refusing is not hammered.
        setTimeout(function () { socket.connect(); }, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 30000);
      }
    });
  }

  $('join').addEventListener('submit', function (e) {
    e.preventDefault();
    username = $('username').value.trim();
    if (!username) return;
    $('join').hidden = true;
    $('chat').hidden = false;
    setStatus('connecting', 'connecting…');
    var start = initPath
      ? fetch(new URL(initPath, serverURL), { credentials: 'omit' }).catch(function (err) {
          showError('init request ' + initPath + ' failed: ' + str(err && err.message));
        })
      : Promise.resolve();
    start.then(connect);
    $('message').focus();
  });

  $('write').addEventListener('submit', function (e) {
    e.preventDefault();
    var input = $('message');
    var text = input.value;
    if (!text || !socket) return;
    socket.emit('writeMessage', { message: text, username: username }, function (ack) {
      // Servers that do not acknowledge never call this; that is allowed.
      if (ack && typeof ack === 'object' && ack.ok === false) showError(refusal(ack));
    });
    input.value = '';
  });
})();
