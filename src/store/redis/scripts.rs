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
-- A signed-in session is counted in the store-wide index until its `m:counted`: when it
-- now lives past that, it is counted an eighth of its lifetime longer, and the new time
-- is returned for the store-wide index (nil otherwise), so that an active session
-- writes that index once an eighth of its lifetime at most.
local function counted(clock)
  if not redis.call('ZSCORE', KEYS[3], KEYS[1]) then return nil end
  local expires = clock + redis.call('PTTL', KEYS[1])
  if expires <= tonumber(redis.call('HGET', KEYS[1], 'm:counted') or '0') then return nil end
  local till = expires + math.floor(tonumber(redis.call('HGET', KEYS[1], 'm:ttl') or '0') / 8)
  redis.call('HSET', KEYS[1], 'm:counted', till)
  return till
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
/// expiry, atomically; returns 1, 0 when the id is taken, -1 when a stranger's session is
/// refused, and for a signed-in session until when it is counted store-wide (for
/// [`ADMIT`]). The group keeps the rule of `evict::room` for strangers: a full group first
/// drops its expired members (only when full: a count is O(1), a drop is not), then
/// evicts the anonymous sessions closest to expiry, a 64th of its cap at a time; a new
/// anonymous session never evicts a signed-in one (the group full of them refuses it). A
/// sign-in evicts anonymous ones too, but never a signed-in one here: signed-in sessions
/// are capped store-wide, by [`ADMIT`]. (`unpack` passes every field to one `HSET`, up to
/// Lua's limit of some thousands of arguments.)
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
  end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
-- A new session is in no index: an earlier session of its id was deleted (and left
-- both) or expired (and any place it kept scores in the past, dropped when full).
if class == 'a' then file(KEYS[2], clock, tonumber(ARGV[1])) end
if class == 's' then
  file(KEYS[3], clock, tonumber(ARGV[1]))
  return counted(clock)
end
return 1
";

/// `ARGV[1]` new TTL in ms or ''; `ARGV[2]` '1' or '0' when the changes log a user in or
/// out, else ''; `ARGV[3]` the number of fields to set; those field/value pairs; then
/// fields to delete. Applies the changes only while the session exists, so a deleted or
/// expired session is never brought back. Returns 0 when it does not, 2 when a signed-in
/// session logged out (it leaves the store-wide index), until when it is counted
/// store-wide when it logged in or lives past that time (for [`ADMIT`]), and 1 otherwise.
pub(super) const COMMIT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local sets = tonumber(ARGV[3])
if sets > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 4, 3 + 2 * sets)) end
if #ARGV > 3 + 2 * sets then redis.call('HDEL', KEYS[1], unpack(ARGV, 4 + 2 * sets)) end
if ARGV[1] ~= '' then
  redis.call('HSET', KEYS[1], 'm:ttl', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
local clock = now()
if ARGV[2] == '0' then
  local was = redis.call('ZSCORE', KEYS[3], KEYS[1])
  index(false, clock)
  redis.call('HDEL', KEYS[1], 'm:counted')
  if was then return 2 end
elseif ARGV[2] == '1' then
  index(true, clock)
  redis.call('HDEL', KEYS[1], 'm:counted')
  return counted(clock) or 1
elseif ARGV[1] ~= '' then
  refile(clock)
  return counted(clock) or 1
end
return 1
";

/// Resets the session's expiry to its own lifetime; returns its fields, as `HGETALL`
/// does (none when the session does not exist), and, when a signed-in session now lives
/// past until when it is counted store-wide, `m:recount` and that new time last. Never
/// writes data.
pub(super) const TOUCH: &str = r"
local ttl = redis.call('HGET', KEYS[1], 'm:ttl')
if not ttl then return {} end
redis.call('PEXPIRE', KEYS[1], ttl)
local clock = now()
refile(clock)
local till = counted(clock)
local fields = redis.call('HGETALL', KEYS[1])
if till then
  fields[#fields + 1] = 'm:recount'
  fields[#fields + 1] = tostring(till)
end
return fields
";

/// Deletes the session and its place in the indexes; returns 1 when it deleted it, plus 2
/// when it was signed in (it leaves the store-wide index).
pub(super) const DELETE: &str = r"
redis.call('ZREM', KEYS[2], KEYS[1])
local signed_in = redis.call('ZREM', KEYS[3], KEYS[1])
return redis.call('DEL', KEYS[1]) + 2 * signed_in
";

/// `KEYS[1]` the store-wide index of signed-in sessions (`session:{all}:signed-in`, one slot),
/// scored by until when each is counted; `ARGV[1]` a signed-in session's key, `ARGV[2]`
/// until when it is counted (milliseconds on the server's clock), `ARGV[3]` the cap.
/// Drops the members counted no longer, counts the session until then (never shorter
/// than before), and returns the keys of the other sessions closest to expiry past the
/// cap (never the one admitted), for the caller to delete: signed-in sessions are displaced only by sign-ins, and only when
/// signed-in sessions fill the store. Only sign-ins, log-outs and a signed-in session's
/// extension (once an eighth of its lifetime) come here: no anonymous request does.
pub(super) const ADMIT: &str = r"
local clock = now()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', clock)
local till = tonumber(ARGV[2])
local before = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not before or tonumber(before) < till then redis.call('ZADD', KEYS[1], till, ARGV[1]) end
if till > clock and redis.call('PTTL', KEYS[1]) < till - clock then
  redis.call('PEXPIRE', KEYS[1], till - clock)
end
local over, victims = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3]), {}
if over > 0 then
  -- Never the session admitted, whatever its lifetime: the others closest to expiry.
  local mine = redis.call('ZSCORE', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[1], ARGV[1])
  local popped = redis.call('ZPOPMIN', KEYS[1], over)
  for v = 1, #popped, 2 do victims[#victims + 1] = popped[v] end
  redis.call('ZADD', KEYS[1], mine, ARGV[1])
end
return victims
";

/// The store's scripts.
pub(super) struct Scripts {
    pub(super) create: Lua,
    pub(super) commit: Lua,
    pub(super) touch: Lua,
    pub(super) delete: Lua,
    pub(super) admit: Lua,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Scripts {
            create: Lua::new(CREATE),
            commit: Lua::new(COMMIT),
            touch: Lua::new(TOUCH),
            delete: Lua::new(DELETE),
            admit: Lua::new(ADMIT),
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
