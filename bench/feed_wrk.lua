-- wrk script for bench/feed.py (closed-loop, maximum-throughput scenarios).
--
--   wrk -t1 -cN -dSs --latency -s bench/feed_wrk.lua http://127.0.0.1:PORT -- PREFIX TOKEN USERS
--
-- PREFIX: the path and query up to the user id, e.g. "/feed/recommendations?limit=20&userId=".
-- TOKEN: a bearer token, or "-" for none. USERS: requests cycle through u000000..u<USERS-1>
-- in a scattered order, so each request asks for another viewer's feed (a new feed session).
-- response() counts statuses and the feed's fallbackReason; done() prints one line
-- "WRKJSON {...}" that bench/feed.py parses (latencies in microseconds).

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   prefix = args[1]
   local token = args[2]
   users = tonumber(args[3])
   headers = {}
   if token ~= nil and token ~= "-" then
      headers["Authorization"] = "Bearer " .. token
   end
   math.randomseed(os.time())
   counter = math.random(users)
   responses = 0
   non2xx = 0
   fivexx = 0
   lightfm = 0
   r_deadline = 0
   r_unavailable = 0
   r_error = 0
   r_circuit_open = 0
   r_cold_start = 0
   r_other = 0
end

function request()
   -- 7919 is prime and does not divide USERS: consecutive requests are far-apart viewers.
   counter = (counter + 7919) % users
   return wrk.format("GET", prefix .. string.format("u%06d", counter), headers)
end

function response(status, hdrs, body)
   responses = responses + 1
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
   end
   if status >= 500 then
      fivexx = fivexx + 1
   end
   local reason = body and string.match(body, '"fallbackReason":%s*"?([%a_]+)')
   if reason == nil then
      return
   elseif reason == "null" then
      lightfm = lightfm + 1
   elseif reason == "deadline" then
      r_deadline = r_deadline + 1
   elseif reason == "unavailable" then
      r_unavailable = r_unavailable + 1
   elseif reason == "error" then
      r_error = r_error + 1
   elseif reason == "circuit_open" then
      r_circuit_open = r_circuit_open + 1
   elseif reason == "cold_start" then
      r_cold_start = r_cold_start + 1
   else
      r_other = r_other + 1
   end
end

local function total(name)
   local sum = 0
   for _, thread in ipairs(threads) do
      sum = sum + (thread:get(name) or 0)
   end
   return sum
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
         .. '"max_us":%d,"socket_errors":%d,"status_errors":%d,"responses":%d,"non2xx":%d,'
         .. '"fivexx":%d,"reasons":{"null":%d,"deadline":%d,"unavailable":%d,"error":%d,'
         .. '"circuit_open":%d,"cold_start":%d,"other":%d}}\n',
      summary.requests, summary.duration,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      e.connect + e.read + e.write + e.timeout, e.status,
      total("responses"), total("non2xx"), total("fivexx"),
      total("lightfm"), total("r_deadline"), total("r_unavailable"), total("r_error"),
      total("r_circuit_open"), total("r_cold_start"), total("r_other")))
end
