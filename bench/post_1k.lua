-- wrk script for bench/gate_load.sh: every request is a POST with the same 1 KiB body.
--
-- WRK_DELAY_MS (environment, optional): when set above 0, each connection waits that many
-- milliseconds after a response before sending its next request, which paces the load to about
-- connections * 1000 / (WRK_DELAY_MS + latency) requests per second. wrk measures latency from
-- the moment a request is written, so the pause is not counted.
--
-- done() prints one machine-readable line:
--   RESULT requests=N duration_us=N rps=N p50_us=N p90_us=N p99_us=N max_us=N errors=N non2xx=N

local line = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n" -- 64 bytes
wrk.method = "POST"
wrk.body = string.rep(line, 16) -- 1024 bytes
wrk.headers["Content-Type"] = "application/octet-stream"

local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "0") or 0
if delay_ms > 0 then
   function delay()
      return delay_ms
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   local errors = e.connect + e.read + e.write + e.timeout
   local seconds = summary.duration / 1e6
   io.write(string.format(
      "RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d errors=%d non2xx=%d\n",
      summary.requests, summary.duration, summary.requests / seconds,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      errors, e.status))
end
