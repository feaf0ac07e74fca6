-- wrk script for tests/cli/serve.sh's short load: POSTs the picture named
-- by $IMAGE to /predict as image/png. (wrk runs for a duration; the
-- count-based benchmark, bench/serve.sh, uses ab.) wrk itself reports
-- answers that are not 2xx ("Non-2xx or 3xx responses") and socket errors.
local f = assert(io.open(os.getenv("IMAGE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "image/png"
wrk.path = "/predict"
