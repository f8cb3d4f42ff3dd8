-- wrk script for the upload_10m scenario: every request POSTs 10 MiB.
-- (Do not define done() here: bench.py appends its own reporting done().)
wrk.method = "POST"
wrk.body = string.rep("u", 10 * 1024 * 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
