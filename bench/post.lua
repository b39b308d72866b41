-- wrk script of bench/run.py: POST one JSON body with the given headers, and print
-- the summary as one JSON line (prefixed "WRK_JSON ") from the done() hook.
--
--   wrk -t2 -c64 -d10s --latency -s bench/post.lua http://127.0.0.1:PORT/messages -- API_KEY BODY_FILE
--
-- Latencies are wrk's (microseconds; percentiles from its HdrHistogram-like store).

local req

function init(args)
   local key, path = args[1], args[2]
   local f = assert(io.open(path, "rb"))
   local body = f:read("*a")
   f:close()
   req = wrk.format("POST", nil, {
      ["Host"] = wrk.port and (wrk.host .. ":" .. wrk.port) or wrk.host,
      ["Content-Type"] = "application/json",
      ["D360-API-KEY"] = key,
   }, body)
end

function request()
   return req
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
      .. '"mean_us": %.1f, "max_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.mean, latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
