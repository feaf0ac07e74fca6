-- wrk script for bench/serve.sh and tests/cli/serve.sh: POSTs the picture
-- named by $IMAGE to /predict as image/png. With $REQUESTS and $THREADS
-- (wrk's -t), each thread stops after its share of REQUESTS answers, so
-- that a run is a count of requests, not a duration (then give -d as a
-- time limit). done() prints "answers: N, not 200: M".
local f = assert(io.open(os.getenv("IMAGE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "image/png"
wrk.path = "/predict"

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  answers, bad = 0, 0
  local n, t = tonumber(os.getenv("REQUESTS") or ""), tonumber(os.getenv("THREADS") or "")
  quota = (n and t) and math.ceil(n / t) or nil
end

function response(status, headers, body)
  answers = answers + 1
  if status ~= 200 then bad = bad + 1 end
  if quota and answers >= quota then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local a, b = 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("answers")
    b = b + t:get("bad")
  end
  io.write(string.format("answers: %d, not 200: %d\n", a, b))
end
