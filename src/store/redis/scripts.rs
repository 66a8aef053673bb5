//! The Lua scripts that create, commit, touch and delete a session in one round trip each.

use redis::Script;

/// Every script's `KEYS`: `[1]` the session, `[2]` its group's index of anonymous
/// sessions, `[3]` its group's index of logged-in ones. An index is a sorted set of
/// session keys scored by expiry (milliseconds on the server's clock); it expires when
/// its longest-lived member does. This prelude reads the clock and keeps a session's
/// place in the indexes.
pub(super) const PRELUDE: &str = r"
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Files the session in the index `mine`, scored by its expiry, `pttl` ms from `clock`.
local function file(mine, clock, pttl)
  redis.call('ZADD', mine, clock + pttl, KEYS[1])
  if redis.call('PTTL', mine) < pttl then redis.call('PEXPIRE', mine, pttl) end
end
-- Moves the session to the index for `signed_in`, scored by its expiry.
local function index(signed_in, clock)
  local mine, other = KEYS[2], KEYS[3]
  if signed_in then mine, other = KEYS[3], KEYS[2] end
  redis.call('ZREM', other, KEYS[1])
  file(mine, clock, redis.call('PTTL', KEYS[1]))
end
-- Files the session again by its new expiry, in the index it is in: a list of a user's
-- sessions is in none (it is outside the cap), and stays so.
local function refile(clock)
  if redis.call('ZSCORE', KEYS[3], KEYS[1]) then
    index(true, clock)
  elseif redis.call('ZSCORE', KEYS[2], KEYS[1]) then
    index(false, clock)
  end
end
";

/// `ARGV[1]` TTL in ms; `ARGV[2]` the group's cap; `ARGV[3]` the session's class: `a`
/// anonymous, `s` signed in, `l` a list of a user's sessions (outside the cap, in no
/// index); then field/value pairs. Creates the hash only if it does not exist, with its
/// expiry, atomically; returns 1, 0 when the id is taken, and -1 when a stranger's session
/// is refused. The group keeps the rule of `evict::room`: a full group first drops its
/// expired members (only when full: a count is O(1), a drop is not), then evicts the
/// anonymous sessions closest to expiry, a 64th of its cap at a time; a new anonymous
/// session never evicts a signed-in one (the group full of them refuses it), and a
/// sign-in evicts signed-in ones only when no anonymous one is left. (`unpack` passes
/// every field to one `HSET`, up to Lua's limit of some thousands of arguments.)
pub(super) const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local clock = now()
local cap, class = tonumber(ARGV[2]), ARGV[3]
-- Evicts up to `n` of the index's sessions closest to expiry.
local function evict(index, n)
  local popped, victims = redis.call('ZPOPMIN', index, n), {}
  for v = 1, #popped, 2 do victims[#victims + 1] = popped[v] end
  if #victims > 0 then redis.call('DEL', unpack(victims)) end
end
if class ~= 'l' then
  local function counts() return redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3]) end
  local anonymous, signed_in = counts()
  if anonymous + signed_in >= cap then
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', clock)
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', clock)
    anonymous, signed_in = counts()
  end
  if anonymous + signed_in >= cap then
    local over = anonymous + signed_in + 1 - cap
    local strangers = math.min(math.max(over, math.floor(cap / 64)), anonymous)
    if strangers == 0 and class == 'a' then return -1 end
    if strangers > 0 then evict(KEYS[2], strangers) end
    if over > strangers and class == 's' then evict(KEYS[3], over - strangers) end
  end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
-- A new session is in no index: an earlier session of its id was deleted (and left
-- both) or expired (and any place it kept scores in the past, dropped when full).
if class == 's' then file(KEYS[3], clock, tonumber(ARGV[1])) end
if class == 'a' then file(KEYS[2], clock, tonumber(ARGV[1])) end
return 1
";

/// `ARGV[1]` new TTL in ms or ''; `ARGV[2]` '1' or '0' when the changes log a user in or
/// out, else ''; `ARGV[3]` the number of fields to set; those field/value pairs; then
/// fields to delete. Applies the changes only while the session exists, so a deleted or
/// expired session is never brought back.
pub(super) const COMMIT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local sets = tonumber(ARGV[3])
if sets > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 4, 3 + 2 * sets)) end
if #ARGV > 3 + 2 * sets then redis.call('HDEL', KEYS[1], unpack(ARGV, 4 + 2 * sets)) end
if ARGV[1] ~= '' then
  redis.call('HSET', KEYS[1], 'm:ttl', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
if ARGV[2] ~= '' then
  index(ARGV[2] == '1', now())
elseif ARGV[1] ~= '' then
  refile(now())
end
return 1
";

/// Resets the session's expiry to its own lifetime; returns its fields, as `HGETALL`
/// does (none when the session does not exist). Never writes data.
pub(super) const TOUCH: &str = r"
local ttl = redis.call('HGET', KEYS[1], 'm:ttl')
if not ttl then return {} end
redis.call('PEXPIRE', KEYS[1], ttl)
refile(now())
return redis.call('HGETALL', KEYS[1])
";

/// Deletes the session and its place in the indexes; returns how many keys it deleted.
pub(super) const DELETE: &str = r"
redis.call('ZREM', KEYS[2], KEYS[1])
redis.call('ZREM', KEYS[3], KEYS[1])
return redis.call('DEL', KEYS[1])
";

/// The store's scripts.
pub(super) struct Scripts {
    pub(super) create: Lua,
    pub(super) commit: Lua,
    pub(super) touch: Lua,
    pub(super) delete: Lua,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Scripts {
            create: Lua::new(CREATE),
            commit: Lua::new(COMMIT),
            touch: Lua::new(TOUCH),
            delete: Lua::new(DELETE),
        }
    }
}

/// A Lua script: its source, to load it, and its hash, to run it with `EVALSHA`.
pub(super) struct Lua {
    pub(super) code: String,
    pub(super) hash: String,
}

impl Lua {
    /// The script `body`, after the prelude every script shares.
    fn new(body: &str) -> Self {
        let code = format!("{PRELUDE}{body}");
        Lua {
            hash: Script::new(&code).get_hash().to_owned(),
            code,
        }
    }
}
