-- wrk: one small non-streaming chat completion per request, with sparkd's key.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "none")
wrk.body = '{"model": "' .. (os.getenv("BENCH_MODEL") or "bench-a") ..
           '", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}'

done = function(summary, latency, requests)
  io.write(string.format("BENCH %d %d %.1f %.1f %.1f %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.mean,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
