package redisstore

import "github.com/redis/go-redis/v9"

// Key layout, every key under Options.Prefix (P):
//
//	P seq                 STRING  INCR counter: join-order scores, never reset
//	P users               ZSET    username -> seq of its join; ZRANGE = join order
//	P socks:<username>    SET     socket IDs holding <username>
//	P history             LIST    JSON store.Message, oldest first, capped
//	P nodes               SET     node IDs that may hold sockets
//	P node:<nodeID>       STRING  liveness key, expires after NodeTTL
//	P nodesocks:<nodeID>  SET     ["username","socketID"] (cjson) held by the node
//	P feed                STREAM  one entry per change, written by the script that made it (feed.go)
//	P feedseq             STRING  INCR counter numbering the feed's entries
//
// Invariant kept by every script: a username is in P users exactly when
// P socks:<username> is non-empty, and every hold in some P socks:<u> is
// recorded in the P nodesocks:<n> of the node that made it.
//
// Each mutation is one Lua script, so it is atomic with respect to every
// other client of the same Redis. Scripts build the socks:<username> keys of
// reaped or restored sockets from the prefix, which standalone Redis allows;
// on Redis Cluster every key must share one slot, so the prefix would need a
// hash tag such as "{chat}:" (untested here).

// joinScript records a hold and lists the username if it is new.
// KEYS: users, seq, history, socks:<u>, nodesocks:<self>, feed, feedseq.
// ARGV: username, socketID, feed length (0: no feed).
// Returns {added 0|1, users, history}.
var joinScript = redis.NewScript(feedLua + `
redis.call('SADD', KEYS[4], ARGV[2])
redis.call('SADD', KEYS[5], cjson.encode({ARGV[1], ARGV[2]}))
local added = 0
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[2]), ARGV[1])
  added = 1
end
local users, history = redis.call('ZRANGE', KEYS[1], 0, -1), redis.call('LRANGE', KEYS[3], 0, -1)
feed(KEYS[6], KEYS[7], ARGV[3], 'join', ARGV[2], added, users, history)
return {added, users, history}
`)

// leaveScript forgets a hold and unlists the username if no hold remains.
// KEYS: users, socks:<u>, nodesocks:<self>, feed, feedseq.
// ARGV: username, socketID, feed length.
// Returns {removed 0|1, users}.
var leaveScript = redis.NewScript(feedLua + `
local removed = 0
if redis.call('SREM', KEYS[2], ARGV[2]) == 1 and redis.call('SCARD', KEYS[2]) == 0 then
  removed = redis.call('ZREM', KEYS[1], ARGV[1])
end
redis.call('SREM', KEYS[3], cjson.encode({ARGV[1], ARGV[2]}))
local users = redis.call('ZRANGE', KEYS[1], 0, -1)
feed(KEYS[4], KEYS[5], ARGV[3], 'leave', ARGV[2], removed, users, nil)
return {removed, users}
`)

// appendScript appends a message and trims the history to the limit in the
// same step, so no reader ever sees more than the limit.
// KEYS: history, feed, feedseq. ARGV: message JSON, limit, feed length, socketID.
// Returns the history.
var appendScript = redis.NewScript(feedLua + `
local limit = tonumber(ARGV[2])
if limit <= 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('RPUSH', KEYS[1], ARGV[1])
  redis.call('LTRIM', KEYS[1], -limit, -1)
end
local history = redis.call('LRANGE', KEYS[1], 0, -1)
feed(KEYS[2], KEYS[3], ARGV[3], 'append', ARGV[4], 1, {}, history)
return history
`)

// refreshScript extends this node's liveness key and reports whether it
// still existed. A missing key means Redis lost its data (a restart without
// persistence) or another node reaped this one after a stall: either way
// this node's sockets must be registered again.
// KEYS: node:<self>, nodes. ARGV: nodeID, TTL in ms, "nx" to fail if the key exists.
// Returns 1 if the key existed, 0 if not, -1 if "nx" was given and it existed.
var refreshScript = redis.NewScript(`
local existed = redis.call('EXISTS', KEYS[1])
if ARGV[3] == 'nx' and existed == 1 then
  return -1
end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return existed
`)

// restoreScript registers holds again after this node found its liveness key
// missing. Usernames not listed any more are appended in the order given.
// KEYS: users, seq, nodesocks:<self>, feed, feedseq.
// ARGV: prefix, feed length, then username, socketID pairs.
// Returns {added usernames, users}.
var restoreScript = redis.NewScript(feedLua + `
local added = {}
for i = 3, #ARGV, 2 do
  local u, s = ARGV[i], ARGV[i+1]
  redis.call('SADD', ARGV[1] .. 'socks:' .. u, s)
  redis.call('SADD', KEYS[3], cjson.encode({u, s}))
  if not redis.call('ZSCORE', KEYS[1], u) then
    redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[2]), u)
    added[#added+1] = u
  end
end
local users = redis.call('ZRANGE', KEYS[1], 0, -1)
if #added > 0 then
  feed(KEYS[4], KEYS[5], ARGV[2], 'restored', '', 1, users, nil)
end
return {added, users}
`)

// reapScript removes every hold of a node. With mode "" (a survivor reaping)
// only if the node's liveness key is gone: checking the key inside the
// script means a node that refreshed at the last moment is never reaped, and
// two survivors reaping the same node cannot both report the same users.
// Mode "stale" (a node starting under its previous ID) removes the holds
// regardless; mode "close" (a node closing) also deletes its liveness key.
// KEYS: nodes, node:<id>, nodesocks:<id>, users, feed, feedseq.
// ARGV: prefix, nodeID, mode, feed length.
// Returns {holds removed, usernames unlisted in join order, users}.
var reapScript = redis.NewScript(feedLua + `
if ARGV[3] == '' and redis.call('EXISTS', KEYS[2]) == 1 then
  return {0, {}, {}}
end
local gone = {}
local holds = redis.call('SMEMBERS', KEYS[3])
for _, m in ipairs(holds) do
  local h = cjson.decode(m)
  local sk = ARGV[1] .. 'socks:' .. h[1]
  if redis.call('SREM', sk, h[2]) == 1 and redis.call('SCARD', sk) == 0 then
    local score = redis.call('ZSCORE', KEYS[4], h[1])
    if score then
      redis.call('ZREM', KEYS[4], h[1])
      gone[#gone+1] = {tonumber(score), h[1]}
    end
  end
end
-- Report unlisted usernames in join order, not in set order.
table.sort(gone, function(a, b) return a[1] < b[1] end)
for i, g in ipairs(gone) do
  gone[i] = g[2]
end
redis.call('DEL', KEYS[3])
if ARGV[3] ~= 'stale' then
  redis.call('SREM', KEYS[1], ARGV[2])
end
if ARGV[3] == 'close' then
  redis.call('DEL', KEYS[2])
end
local users = redis.call('ZRANGE', KEYS[4], 0, -1)
if #gone > 0 then
  feed(KEYS[5], KEYS[6], ARGV[4], 'removed', '', 1, users, nil)
end
return {#holds, gone, users}
`)

// feedLua is prepended to every script that changes the list or the
// history: feed() appends the change, with the lists right after it, to the
// feed stream inside the same atomic script, so the feed's order is the
// order of the changes themselves. A length of "0" disables it.
// cjson.encode({}) gives "{}", so empty lists are written by hand.
const feedLua = `
local function feed(fkey, skey, maxlen, kind, sock, changed, users, history)
  if maxlen == '0' or maxlen == '' then
    return
  end
  local u = '[]'
  if #users > 0 then
    u = cjson.encode(users)
  end
  local args = {'XADD', fkey, 'MAXLEN', '~', maxlen, '*',
    'n', redis.call('INCR', skey), 'k', kind, 's', sock, 'c', changed, 'u', u}
  if history then
    args[#args+1] = 'h'
    args[#args+1] = '[' .. table.concat(history, ',') .. ']'
  end
  redis.call(unpack(args))
end
`
