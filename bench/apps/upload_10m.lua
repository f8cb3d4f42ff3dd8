-- wrk script for the upload_10m scenarios: every request POSTs 10 MiB.
-- (Do not define done() here: bench.py appends its own reporting done(),
-- which sums bench_bad over bench_threads and reports it as err_body.)
wrk.method = "POST"
wrk.body = string.rep("u", 10 * 1024 * 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
-- wrk sets Content-Length: 10485760 itself from wrk.body.

-- The app (apps/upload.wsgi) answers with the number of bytes it read:
-- the same answer is expected from both modules, in both modes.
local expected = tostring(10 * 1024 * 1024)

bench_threads = {}
setup = function(thread)
  table.insert(bench_threads, thread)
end

bench_bad = 0
response = function(status, headers, body)
  -- non-2xx/3xx statuses are already counted by wrk (err_status)
  if status < 400 and body ~= expected then
    bench_bad = bench_bad + 1
  end
end
