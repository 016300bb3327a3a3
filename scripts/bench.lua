-- wrk script of scripts/bench.sh: sends the requests of a file written by pms-bench.
--   wrk -t THREADS ... -s scripts/bench.lua URL -- FILE get|post THREADS [PATH]
-- get: each request is a random line (a path). post: each line is a JSON body for
-- POST PATH (default /api/patients), each used once: thread n of t takes lines n, n+t, ...
-- At the end it prints one line: RESULT requests requests/s p50-ms p99-ms errors kinds, where
-- errors counts answers other than 2xx/3xx and failed requests, and kinds splits them as
-- connect/read/write/status/timeout (status: a 4xx or 5xx answer; timeout: none within wrk's
-- 2 s).
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
    post = args[2] == "post"
    step = tonumber(args[3])
    path = args[4] or "/api/patients"
    at = id
    if post then
        -- Added to the -H headers (a headers argument to wrk.format would replace them).
        wrk.headers["Content-Type"] = "application/json"
    end
    math.randomseed(os.time() * 7 + id)
end

function request()
    if post then
        local body = lines[at]
        at = at + step
        return wrk.format("POST", path, nil, body)
    end
    return wrk.format("GET", lines[math.random(#lines)])
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("RESULT %d %.0f %.2f %.2f %d %d/%d/%d/%d/%d\n", summary.requests,
        summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
        latency:percentile(99) / 1000, e.connect + e.read + e.write + e.status + e.timeout,
        e.connect, e.read, e.write, e.status, e.timeout))
end

-- With PMS_BENCH_SHOW_ERRORS=1, the first five answers of each thread with a status of 400 or
-- more are printed (ANSWER status body) to say what the errors were; off by default, because
-- handing every answer to Lua costs wrk time.
if os.getenv("PMS_BENCH_SHOW_ERRORS") == "1" then
    local shown = 0
    function response(status, headers, body)
        if status >= 400 and shown < 5 then
            shown = shown + 1
            io.write(string.format("ANSWER %d %s\n", status, (body or ""):gsub("%s+", " ")))
        end
    end
end
