-- wrk: one small non-streaming Anthropic message per request, with sparkd's key as x-api-key.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-api-key"] = os.getenv("BENCH_KEY") or "none"
wrk.headers["anthropic-version"] = "2023-06-01"
wrk.body = '{"model": "' .. (os.getenv("BENCH_MODEL") or "bench-a") ..
           '", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}'

done = function(summary, latency, requests)
  io.write(string.format("BENCH %d %d %.1f %.1f %.1f %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.mean,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
