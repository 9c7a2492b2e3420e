"""The gate's state in Redis, changed only by the Lua scripts below (each one atomic).

Per gated level (keys from ``LevelKeys``):

- a hash: ``available`` and ``version``, the newest committed values Redis has heard of;
  ``held``, the units of admissions whose database change has not been settled yet;
  ``admitted`` and ``refunded``, counts of admissions and of those the database refused;
- a sorted set of those holds, ``"<hold id>:<units>"`` scored by the time (ms) after
  which the reconciler gives their units back (a process that died mid-sale, an outer
  transaction rolled back);
- a sorted set of the level's active reservations, scored by ``expires_at`` (s): a buyer
  short of tokens while one of them is due goes to the database, which expires it and
  sells (no sale is refused because of an expired hold).

A level's tokens are ``available - held``. A committed change moves ``available`` only
forward in ``version``, so changes heard out of order keep the newest; an admission
adds to ``held`` before its database change and the settlement after its commit takes
it off, so the tokens never count units an admitted buyer is about to take.
"""

from dataclasses import dataclass

from django.core.cache import cache

REGISTRY_KEY = "gate:levels"  # set of "<store id>:<product id>" of the gated levels
SEEDED_KEY = "gate:seeded"  # present once a reconcile has run since Redis last started

# KEYS: per line, its hash, holds and due sets. ARGV: now (ms), now (s), the holds'
# deadline (ms), the hold id, then per line its units.
# Returns {outcome, then per line its tokens after}: outcome 1 admitted (every line took
# its units), 0 short (nothing taken), 2 short but a reservation of a short line is due
# (nothing taken: go to the database), 3 a line is not seeded (nothing taken: fail open).
ADMIT_SCRIPT = """
local lines = #KEYS / 3
local tokens, short, due = {}, false, false
for i = 1, lines do
  local state = redis.call('HMGET', KEYS[3 * i - 2], 'available', 'held')
  if not state[1] then return {3} end
  tokens[i] = tonumber(state[1]) - tonumber(state[2] or '0')
  if tokens[i] < tonumber(ARGV[4 + i]) then
    short = true
    if #redis.call('ZRANGEBYSCORE', KEYS[3 * i], '-inf', ARGV[2], 'LIMIT', 0, 1) > 0 then
      due = true
    end
  end
end
if short then
  local answer = {due and 2 or 0}
  for i = 1, lines do answer[i + 1] = math.max(tokens[i], 0) end
  return answer
end
local answer = {1}
for i = 1, lines do
  local units = tonumber(ARGV[4 + i])
  redis.call('HINCRBY', KEYS[3 * i - 2], 'held', units)
  redis.call('HINCRBY', KEYS[3 * i - 2], 'admitted', 1)
  redis.call('ZADD', KEYS[3 * i - 1], ARGV[3], ARGV[4] .. ':' .. units)
  answer[i + 1] = tokens[i] - units
end
return answer
"""

# Ends holds. KEYS: per line, its hash and holds set. ARGV: the hold id, "1" to count a
# refund, then per line its units, available and version committed ('' and '' for a
# refund). A hold the reconciler already gave back is not given back twice. Returns per
# line the tokens after (-1: not gated any more).
SETTLE_SCRIPT = """
local answer = {}
for i = 1, #KEYS / 2 do
  local hash, base = KEYS[2 * i - 1], 2 + (i - 1) * 3
  if redis.call('EXISTS', hash) == 0 then
    answer[i] = -1
  else
    local units = ARGV[base + 1]
    if redis.call('ZREM', KEYS[2 * i], ARGV[1] .. ':' .. units) == 1 then
      redis.call('HINCRBY', hash, 'held', -tonumber(units))
      if ARGV[2] == '1' then redis.call('HINCRBY', hash, 'refunded', 1) end
    end
    if ARGV[base + 3] ~= '' then
      local version = tonumber(redis.call('HGET', hash, 'version') or '-1')
      if tonumber(ARGV[base + 3]) > version then
        redis.call('HSET', hash, 'available', ARGV[base + 2], 'version', ARGV[base + 3])
      end
    end
    local state = redis.call('HMGET', hash, 'available', 'held')
    answer[i] = math.max(tonumber(state[1]) - tonumber(state[2] or '0'), 0)
  end
end
return answer
"""

# Committed values of levels, heard after the commit of any change. KEYS: per level its
# hash and due set. ARGV: the number of reservations the change started, each as (id,
# expiry in s); the number it ended (committed, released, expired), each as its id; then
# per level its available and version. Returns per level the tokens after (-1: not
# gated).
SYNC_SCRIPT = """
local started = tonumber(ARGV[1])
local ended = tonumber(ARGV[2 + 2 * started])
local at = 3 + 2 * started + ended
local answer = {}
for i = 1, #KEYS / 2 do
  local hash, due = KEYS[2 * i - 1], KEYS[2 * i]
  if redis.call('EXISTS', hash) == 0 then
    answer[i] = -1
  else
    local version = tonumber(redis.call('HGET', hash, 'version') or '-1')
    if tonumber(ARGV[at + 1]) > version then
      redis.call('HSET', hash, 'available', ARGV[at], 'version', ARGV[at + 1])
    end
    for j = 1, started do redis.call('ZADD', due, ARGV[2 * j + 1], ARGV[2 * j]) end
    for j = 1, ended do redis.call('ZREM', due, ARGV[2 + 2 * started + j]) end
    local state = redis.call('HMGET', hash, 'available', 'held')
    answer[i] = math.max(tonumber(state[1]) - tonumber(state[2] or '0'), 0)
  end
  at = at + 2
end
return answer
"""

# Reseed one level from the database. KEYS: its hash, holds and due sets, the registry,
# the seeded marker. ARGV: available, version, now (ms), the registry member, then pairs
# of (reservation id, expiry in s) of its active reservations. Holds past their deadline
# are given back; the committed values replace older ones (a newer version heard since
# the database was read is kept). Returns the tokens after.
SEED_SCRIPT = """
local hash = KEYS[1]
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
local held = tonumber(redis.call('HGET', hash, 'held') or '0')
for _, member in ipairs(stale) do
  held = held - tonumber(string.match(member, ':(%d+)$'))
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
if redis.call('ZCARD', KEYS[2]) == 0 then held = 0 end
local version = tonumber(redis.call('HGET', hash, 'version') or '-1')
if tonumber(ARGV[2]) >= version then
  redis.call('HSET', hash, 'available', ARGV[1], 'version', ARGV[2])
end
redis.call('HSET', hash, 'held', math.max(held, 0))
redis.call('HSETNX', hash, 'admitted', 0)
redis.call('HSETNX', hash, 'refunded', 0)
redis.call('DEL', KEYS[3])
for i = 5, #ARGV, 2 do redis.call('ZADD', KEYS[3], ARGV[i + 1], ARGV[i]) end
redis.call('SADD', KEYS[4], ARGV[4])
redis.call('SET', KEYS[5], '1')
local state = redis.call('HMGET', hash, 'available', 'held')
return math.max(tonumber(state[1]) - tonumber(state[2]), 0)
"""

# The registry as a process sees it: {seeded marker present (0/1), members...}.
REGISTRY_SCRIPT = """
local answer = {redis.call('EXISTS', KEYS[2])}
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do answer[#answer + 1] = member end
return answer
"""

# Forget gated levels. KEYS: the registry, then per level its three keys. ARGV: the
# registry members to remove.
REMOVE_SCRIPT = """
for i = 1, #ARGV do redis.call('SREM', KEYS[1], ARGV[i]) end
for i = 2, #KEYS do redis.call('DEL', KEYS[i]) end
return #ARGV
"""


def member(store_id: int, product_id: int) -> str:
    return f"{store_id}:{product_id}"


@dataclass(frozen=True)
class LevelKeys:
    hash: str
    holds: str
    due: str

    @classmethod
    def of(cls, store_id: int, product_id: int) -> "LevelKeys":
        base = cache.make_key(f"gate:{member(store_id, product_id)}")
        return cls(base, f"{base}:holds", f"{base}:due")


@dataclass(frozen=True)
class GateState:
    available: int
    version: int
    held: int
    admitted: int
    refunded: int

    @property
    def tokens(self) -> int:
        return max(self.available - self.held, 0)


class RedisTokens:
    """The scripts, registered once per process on django-redis's connection."""

    def __init__(self):
        from django_redis import get_redis_connection

        self.client = get_redis_connection("default")
        self.registry_key = cache.make_key(REGISTRY_KEY)
        self.seeded_key = cache.make_key(SEEDED_KEY)
        register = self.client.register_script
        self.admit_script = register(ADMIT_SCRIPT)
        self.settle_script = register(SETTLE_SCRIPT)
        self.sync_script = register(SYNC_SCRIPT)
        self.seed_script = register(SEED_SCRIPT)
        self.registry_script = register(REGISTRY_SCRIPT)
        self.remove_script = register(REMOVE_SCRIPT)

    def admit(self, levels, units, *, hold_id: str, now: float, deadline: float) -> list[int]:
        keys = [key for level in levels for key in _three(level)]
        args = [int(now * 1000), now, int(deadline * 1000), hold_id, *units]
        return [int(value) for value in self.admit_script(keys=keys, args=args)]

    def settle(self, levels, lines, *, hold_id: str, refund: bool) -> list[int]:
        """``lines``: per level (units, available, version), the last two '' for a
        refund."""
        keys = [key for level in levels for key in (level.hash, level.holds)]
        args = [hold_id, "1" if refund else "0"]
        for line in lines:
            args += list(line)
        return [int(value) for value in self.settle_script(keys=keys, args=args)]

    def sync(self, levels, values, *, started=(), ended=()) -> list[int]:
        """``values``: per level (available, version); ``started``: (reservation id,
        expiry in s) of holds the change made; ``ended``: ids of holds it ended."""
        keys = [key for level in levels for key in (level.hash, level.due)]
        args = [len(started), *(value for pair in started for value in pair)]
        args += [len(ended), *ended]
        for available, version in values:
            args += [available, version]
        return [int(value) for value in self.sync_script(keys=keys, args=args)]

    def seed(self, level_member: str, level, available, version, due, *, now: float) -> int:
        args = [available, version, int(now * 1000), level_member]
        for reservation_id, expires_at in due:
            args += [reservation_id, expires_at]
        keys = [*_three(level), self.registry_key, self.seeded_key]
        return int(self.seed_script(keys=keys, args=args))

    def mark_seeded(self) -> None:
        self.client.set(self.seeded_key, "1")

    def registry(self) -> tuple[bool, set[str]]:
        seeded, *members = self.registry_script(keys=[self.registry_key, self.seeded_key])
        return bool(seeded), {value.decode() for value in members}

    def remove(self, members: dict[str, LevelKeys]) -> None:
        keys = [self.registry_key, *(key for level in members.values() for key in _three(level))]
        self.remove_script(keys=keys, args=list(members))

    def state(self, level) -> GateState | None:
        values = self.client.hmget(
            level.hash, "available", "version", "held", "admitted", "refunded"
        )
        if values[0] is None:
            return None
        return GateState(*(int(value or 0) for value in values))


def _three(level: LevelKeys) -> tuple[str, str, str]:
    return level.hash, level.holds, level.due
