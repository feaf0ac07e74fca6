-- wrk script for bench/serve.sh: POSTs the picture named by $IMAGE to
-- /predict as image/png, and counts answers that are not 200.
local f = assert(io.open(os.getenv("IMAGE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "image/png"
wrk.path = "/predict"
