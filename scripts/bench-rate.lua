-- wrk script of scripts/bench-events.sh: registers patients at a steady pace.
--   wrk -t THREADS -c CONNECTIONS ... -s scripts/bench-rate.lua URL -- FILE THREADS PAUSE_MS [PATH]
-- Each line of FILE is a JSON body for POST PATH (default /api/patients), each used once (thread n of t takes
-- lines n, n+t, ...); each connection waits PAUSE_MS after each answer, so the rate is about
-- CONNECTIONS * 1000 / (PAUSE_MS + latency). Prints: RESULT requests requests/s p50 p99 errors.
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
    pause = tonumber(args[3])
    path = args[4] or "/api/patients"
    at = id
    wrk.headers["Content-Type"] = "application/json"
end

function delay()
    return pause
end

function request()
    local body = lines[at]
    at = at + step
    return wrk.format("POST", path, nil, body)
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("RESULT %d %.0f %.2f %.2f %d\n", summary.requests,
        summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
        latency:percentile(99) / 1000, e.connect + e.read + e.write + e.status + e.timeout))
end
