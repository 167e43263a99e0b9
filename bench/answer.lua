-- Answers prepared questions in turn (the generated script prepends the "answers"
-- table: path, cookie, form body). Each wrk thread has its own Lua state, so thread
-- n takes entries n, n + threads, ...: no question is answered twice until the list
-- runs out. Pass the thread count after "--".
local count = 0

function setup(thread)
  thread:set("id", count)
  count = count + 1
end

function init(args)
  step = tonumber(args[1])
  index = id
end

function request()
  local answer = answers[(index % #answers) + 1]
  index = index + step
  return wrk.format("POST", answer[1], {
    ["Cookie"] = answer[2],
    ["User-Agent"] = "quiz-bench",
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }, answer[3])
end
