-- wrk script for hello_groups: requests alternate between /a and /b, the
-- same app in two application groups (two sub-interpreters).
-- (Do not define done() here: bench.py appends its own reporting done().)
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, (n % 2 == 0) and "/a" or "/b")
end
