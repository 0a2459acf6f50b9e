-- One wrk run against one URL: the request comes from the environment,
-- the result is printed as one JSON line for bench/run.py.
wrk.method = os.getenv("BENCH_METHOD") or "GET"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Cookie"] = os.getenv("BENCH_COOKIE")
wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE")
wrk.headers["Authorization"] = os.getenv("BENCH_AUTHORIZATION")

-- A checkout form may be sent only once (its one-time checkout_token), so
-- when the body holds BENCH_TOKEN_SLOT every request puts a new token there:
-- BENCH_TOKEN_PREFIX, new for each run, then a counter, 22 characters in all.
local slot = os.getenv("BENCH_TOKEN_SLOT")
local prefix = os.getenv("BENCH_TOKEN_PREFIX")
local sent = 0

if slot then
  request = function()
    sent = sent + 1
    local token = prefix .. string.format("%010d", sent)
    return wrk.format(nil, nil, nil, (wrk.body:gsub(slot, token)))
  end
end

-- Stop after this many answers even if the time is not up (wrk -t1 only).
local limit = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "50000")
local answered = 0

function response(status, headers, body)
  answered = answered + 1
  if answered >= limit then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "p50_ms": %.3f, "p99_ms": %.3f, '
      .. '"errors": %d, "bad_status": %d}\n',
    summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    errors.connect + errors.read + errors.write + errors.timeout, errors.status))
end
