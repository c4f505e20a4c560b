-- wrk script of `make bench`: sends each request of a pre-built file exactly once.
--
-- BENCH_REQUESTS names the file: line 1 is "METHOD<TAB>PATH", line 2 the headers common to all
-- requests ("name: value" fields separated by tabs), then one request per line: its own
-- headers as tab-separated "name: value" fields, and its body as the last field. Thread t of
-- BENCH_THREADS takes lines t, t+n, t+2n, ...; a thread that has sent all of its lines waits
-- for their answers, then stops, so no request is ever sent twice (replay protection stays
-- on). done() prints one line, "BENCH_RESULT {json}", with the counts, the time from the first
-- request sent to the last answer received (a monotonic clock, read through LuaJIT's ffi), and
-- wrk's latency percentiles. BENCH_EXPECT, when set, is a string every good answer contains.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]])
local clock = ffi.new("bench_timespec")

local function now_us()
  ffi.C.clock_gettime(1, clock) -- CLOCK_MONOTONIC: the same for every thread
  return tonumber(clock.tv_sec) * 1000000 + tonumber(clock.tv_nsec) / 1000
end

local function split(line, sep)
  local fields = {}
  for field in (line .. sep):gmatch("(.-)" .. sep) do
    table.insert(fields, field)
  end
  return fields
end

local threads = {}
local created = 0

function setup(thread)
  thread:set("tid", created)
  created = created + 1
  table.insert(threads, thread)
end

function init(args)
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  expect = os.getenv("BENCH_EXPECT")
  if expect == "" then
    expect = nil
  end
  local file = assert(io.open(assert(os.getenv("BENCH_REQUESTS")), "r"))
  local head = split(file:read("*l"), "\t")
  local method, path = head[1], head[2]
  local common = {}
  for _, field in ipairs(split(file:read("*l"), "\t")) do
    local name, value = field:match("^([^:]+): (.*)$")
    if name then
      common[name] = value
    end
  end
  reqs = {}
  local n = 0
  for line in file:lines() do
    if n % nthreads == tid then
      local fields = split(line, "\t")
      local headers = {}
      for name, value in pairs(common) do
        headers[name] = value
      end
      for i = 1, #fields - 1 do
        local name, value = fields[i]:match("^([^:]+): (.*)$")
        headers[name] = value
      end
      table.insert(reqs, wrk.format(method, path, headers, fields[#fields]))
    end
    n = n + 1
  end
  file:close()
  planned = #reqs
  sent, ok, bad, unexpected = 0, 0, 0, 0
  -- Requests that delay() let through and request() has not yet been asked for.
  promised = 0
  -- wrk 4.1 (Debian's, which make bench installs) asks thread 0's request() once before any
  -- connection opens, to check the request it builds (script_verify_request), and sends
  -- nothing of that call: it must neither use up a line nor start the clock.
  checking = tid == 0
  first_us, last_us = 0, 0
end

function delay()
  -- Every request of this thread has been sent, or promised to another of its connections
  -- (wrk calls delay() when an answer is in and request() later): park the connection until
  -- the run ends. Without the promise, two connections answered at once could both pass and
  -- send the last line twice: a replay.
  if sent + promised >= #reqs then
    return 3600000
  end
  promised = promised + 1
  return 0
end

function request()
  if checking then
    checking = false
    return reqs[1]
  end
  if first_us == 0 then
    first_us = now_us()
  end
  if promised > 0 then
    promised = promised - 1
  end
  sent = sent + 1
  return reqs[math.min(sent, #reqs)]
end

function response(status, headers, body)
  last_us = now_us()
  if status >= 200 and status < 300 then
    ok = ok + 1
    if expect and not body:find(expect, 1, true) then
      unexpected = unexpected + 1
    end
  else
    bad = bad + 1
    if bad <= 3 then
      io.stderr:write("bench: HTTP " .. status .. ": " .. body:sub(1, 300) .. "\n")
    end
  end
  if ok + bad >= #reqs then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local total = { ok = 0, bad = 0, unexpected = 0, planned = 0, exhausted = 0 }
  local first, last = nil, 0
  for _, thread in ipairs(threads) do
    total.ok = total.ok + thread:get("ok")
    total.bad = total.bad + thread:get("bad")
    total.unexpected = total.unexpected + thread:get("unexpected")
    local planned = thread:get("planned")
    total.planned = total.planned + planned
    if thread:get("sent") >= planned then
      total.exhausted = total.exhausted + 1
    end
    local f = thread:get("first_us")
    if f > 0 and (first == nil or f < first) then
      first = f
    end
    last = math.max(last, thread:get("last_us"))
  end
  io.write(string.format(
    'BENCH_RESULT {"ok":%d,"bad":%d,"unexpected":%d,"planned":%d,"exhaustedThreads":%d,'
      .. '"seconds":%.6f,"p50Ms":%.3f,"p99Ms":%.3f,"maxMs":%.3f,"timeouts":%d,"socketErrors":%d}\n',
    total.ok, total.bad, total.unexpected, total.planned, total.exhausted,
    ((first and last > first) and (last - first) or 0) / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.timeout,
    summary.errors.connect + summary.errors.read + summary.errors.write
  ))
end
