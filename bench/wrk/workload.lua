-- One wrk script for every workload, configured by environment variables (set by bench/run.py):
--   BENCH_METHOD, BENCH_PATH and BENCH_BODY (may hold {id} and {term}), BENCH_HEADERS ("Name: value" lines),
--   BENCH_IDS / BENCH_TERMS: files with one offer id / one URL-encoded search term per line.
-- done() prints one JSON line with throughput, latency percentiles (microseconds) and errors.

local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/"
local body = os.getenv("BENCH_BODY")
if body == "" then body = nil end

local headers = {}
for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^([^:]+):%s*(.*)$")
  if name then headers[name] = value end
end

local function lines(file)
  local out = {}
  if file and file ~= "" then
    for l in io.lines(file) do out[#out + 1] = l end
  end
  return out
end

local ids, terms = {}, {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  math.randomseed(os.time() * 1000 + (seed or 0))
  ids = lines(os.getenv("BENCH_IDS"))
  terms = lines(os.getenv("BENCH_TERMS"))
end

local function fill(s)
  if s == nil then return nil end
  -- function replacements: a term's "%20" must not be read as a capture reference
  if #ids > 0 then s = s:gsub("{id}", function() return ids[math.random(#ids)] end) end
  if #terms > 0 then s = s:gsub("{term}", function() return terms[math.random(#terms)] end) end
  return s
end

function request()
  return wrk.format(method, fill(path), headers, fill(body))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"mean_us": %.1f, "max_us": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, ' ..
    '"timeouts": %d, "non_2xx": %d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.mean, latency.max, e.connect, e.read, e.write, e.timeout, e.status))
end
