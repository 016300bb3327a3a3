-- wrk script of scripts/bench-events.sh and bench-appointments.sh: requests at a steady pace.
--   wrk -t THREADS -c CONNECTIONS ... -s scripts/bench-rate.lua URL -- FILE THREADS RATE [PATH|get]
-- Each line of FILE is a JSON body for POST PATH (default /api/patients), or with `get` a path to
-- GET; thread n of t takes lines n, n+t, ... (each body once, unless the file runs out: then from
-- the top). Each thread sends its requests on a wall-clock schedule of RATE/THREADS per second,
-- whatever the answers' latency (a request that is late goes at once), so the rate asked is the
-- rate sent as long as CONNECTIONS can hold the requests in flight. Latency is counted from each
-- request's send. Prints: RESULT requests requests/s p50 p99 errors.
local ffi = require("ffi")
ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } pms_timespec;
    int clock_gettime(int clock, pms_timespec *now);
]]
local CLOCK_MONOTONIC = 1
local now_buf = ffi.new("pms_timespec")
local function now_ms()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, now_buf)
    return tonumber(now_buf.tv_sec) * 1000 + tonumber(now_buf.tv_nsec) / 1e6
end

local next_id = 1

function setup(thread)
    thread:set("id", next_id)
    next_id = next_id + 1
end

function init(args)
    lines = {}
    for line in io.lines(args[1]) do
        lines[#lines + 1] = line
    end
    step = tonumber(args[2])
    interval = 1000 * step / tonumber(args[3])
    get = args[4] == "get"
    path = args[4] or "/api/patients"
    at = id
    slot = nil
    if not get then
        wrk.headers["Content-Type"] = "application/json"
    end
end

function delay()
    local now = now_ms()
    slot = (slot or now) + interval
    local wait = slot - now
    return wait > 0 and wait or 0
end

function request()
    local line = lines[(at - 1) % #lines + 1]
    at = at + step
    if get then
        return wrk.format("GET", line)
    end
    return wrk.format("POST", path, nil, line)
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("RESULT %d %.0f %.2f %.2f %d\n", summary.requests,
        summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
        latency:percentile(99) / 1000, e.connect + e.read + e.write + e.status + e.timeout))
end
