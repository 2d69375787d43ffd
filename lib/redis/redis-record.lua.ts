import { LUA_ASCII_JSON } from '../internal/ascii-json.js';
import { AT, RECORD_ENCODING, RECORD_LAYOUT, RECORD_LENGTH } from './redis-record.layout.js';
import { V1_FIELDS } from './redis-record.v1.js';
import { V3_SEPARATOR } from './redis-record.v3.js';

const positions = (at: Record<string, number>, base: number) =>
  Object.entries(at)
    .map(([field, index]) => `${field} = ${index + base}`)
    .join(', ');

/**
 * Lua for the scripts that read or rewrite a record:
 * - `P.<field>`: the field's (1-based) position in an encoding-2 array;
 * - `NULL`: how a null value reads (`cjson.null`, which Lua counts as true: test with
 *   `present(v)`, which also covers a field appended after the record was written);
 * - `readRecord(raw)`: the stored record as an encoding-2 array, whichever encoding
 *   holds it (an encoding-1 record is converted, value by value, as the JS decoder
 *   reads it), and the encoding it was in;
 * - `writeRecord(rec, encoding)`: the array as stored text in that encoding, ASCII.
 *   Numbers are written with every digit (`cjson.encode` keeps 14, which would move a
 *   date past the year 5138, and every `expiresAt` beyond it); the one table is
 *   `scopes`, written as an array even when empty (`cjson` would write `{}`);
 * - `encodingFor(option, found)`: the encoding a write script writes a record in that
 *   it found in `found`, given the `recordEncoding` option (its ARGV text):
 *   `recordEncoding` 2 or 3 rewrites whatever they find in that encoding; 1 keeps the
 *   encoding the record has.
 * Encoding 3 (`redis-record.v3.ts`) is read into the same array, each value by its
 * kind; values a newer release appended are kept as their stored text.
 */
export const LUA_RECORD = `${LUA_ASCII_JSON}
local P = { ${positions(AT, 1)} }
local V1 = { ${positions(Object.fromEntries(V1_FIELDS.map((field, index) => [field, index])), 1)} }
local NULL = cjson.null
local function present(v) return v ~= nil and v ~= NULL end

local K = { ${RECORD_LAYOUT.map(([, kind], index) => `[${index + 2}] = '${kind}'`).join(', ')} }
local SEP = '\\${V3_SEPARATOR.charCodeAt(0)}'

local function text3(v)
  if string.byte(v, 1) == 34 then return cjson.decode(v) end
  return v
end

local function readV3(raw)
  local rec = { ${RECORD_ENCODING} }
  local i, pos, last = 1, 3, #raw + 1
  while pos <= last do
    local e = string.find(raw, SEP, pos, true) or last
    local v = string.sub(raw, pos, e - 1)
    i = i + 1
    local kind = K[i]
    if kind == nil then rec[i] = { stored3 = v }
    elseif v == '' and (kind == 'text?' or kind == 'date?' or kind == 'json?') then rec[i] = NULL
    elseif kind == 'text' or kind == 'text?' or kind == 'entry' then rec[i] = text3(v)
    elseif kind == 'date' or kind == 'date?' or kind == 'version' then
      rec[i] = tonumber(v)
      if rec[i] == nil then error('a value this version of RedisBackend cannot read') end
    elseif kind == 'list' then
      if v == '' then rec[i] = {}
      elseif string.byte(v, 1) == 91 then rec[i] = cjson.decode(v)
      else
        local items = {}
        for item in string.gmatch(v, '[^,]+') do items[#items + 1] = item end
        rec[i] = items
      end
    else rec[i] = v end
    pos = e + 1
  end
  for at = i + 1, ${RECORD_LENGTH} do rec[at] = NULL end
  return rec
end

local function readRecord(raw)
  if string.sub(raw, 1, 2) == '3' .. SEP then return readV3(raw), 3 end
  local cur = cjson.decode(raw)
  if cur[1] == ${RECORD_ENCODING} then return cur, ${RECORD_ENCODING} end
  if type(cur[1]) ~= 'string' then error('a value this version of RedisBackend cannot read') end
  local rec = { ${RECORD_ENCODING} }
  for field, at in pairs(V1) do
    local v = cur[at]
    if v == false or v == nil then v = NULL end
    if P[field] then rec[P[field]] = v end
  end
  for _, field in ipairs({ 'createdAt', 'updatedAt', 'expiresAt', 'revokedAt', 'lastUsedAt' }) do
    if present(rec[P[field]]) then rec[P[field]] = tonumber(rec[P[field]]) end
  end
  if not present(rec[P.updatedAt]) then rec[P.updatedAt] = rec[P.createdAt] end
  rec[P.version] = present(rec[P.version]) and tonumber(rec[P.version]) or 1
  rec[P.scopes] = present(rec[P.scopes]) and cjson.decode(rec[P.scopes]) or {}
  if not present(rec[P.metadata]) then rec[P.metadata] = '{}' end
  for _, field in ipairs({ 'name', 'ownerId', 'hint' }) do
    if not present(rec[P[field]]) then rec[P[field]] = '' end
  end
  return rec, 1
end

local function listText(list)
  local items = {}
  for j, item in ipairs(list) do items[j] = cjson.encode(item) end
  return '[' .. table.concat(items, ',') .. ']'
end

local function writeV1(rec)
  local out = {}
  for field, at in pairs(V1) do
    local v = rec[P[field]]
    if v == nil or v == NULL then v = false
    elseif type(v) == 'number' then v = string.format('%.0f', v)
    elseif type(v) == 'table' then v = listText(v) end
    out[at] = v
  end
  -- A key never disabled keeps the layout releases before disabledAt read.
  if out[V1.disabledAt] == false then out[V1.disabledAt] = nil end
  return ascii(cjson.encode(out))
end

local function plain3(v)
  return not string.find(v, '[^\\32-\\126]') and string.byte(v, 1) ~= 34
end

local function textOut3(v, nullable)
  if v == '' and nullable then return '""' end
  if plain3(v) then return v end
  return cjson.encode(v)
end

local function listOut3(list)
  if #list == 0 then return '' end
  local joinable = string.byte(list[1], 1) ~= 91
  for _, item in ipairs(list) do
    if item == '' or string.find(item, '[^\\32-\\43\\45-\\126]') then joinable = false end
  end
  if joinable then return table.concat(list, ',') end
  return listText(list)
end

local function writeV3(rec)
  local out = { '3' }
  for i = 2, math.max(${RECORD_LENGTH}, #rec) do
    local v = rec[i]
    local kind = K[i]
    local t = type(v)
    if v == nil or v == NULL then out[i] = ''
    elseif t == 'number' then out[i] = string.format('%.0f', v)
    elseif t == 'table' and v.stored3 then out[i] = v.stored3
    elseif t == 'table' then out[i] = listOut3(v)
    elseif kind == 'json' or kind == 'json?' then out[i] = v
    else out[i] = textOut3(v, kind ~= 'text' and kind ~= 'entry') end
  end
  return ascii(table.concat(out, SEP))
end

local function encodingFor(option, found)
  if option == '2' then return 2 end
  if option == '3' then return 3 end
  return found
end

local function writeRecord(rec, encoding)
  if encoding == 1 then return writeV1(rec) end
  if encoding == 3 then return writeV3(rec) end
  local out = {}
  -- Past this version's fields too: a newer release may have appended some.
  for i = 1, math.max(${RECORD_LENGTH}, #rec) do
    local v = rec[i]
    local t = type(v)
    if v == nil or v == NULL then out[i] = 'null'
    elseif t == 'number' then out[i] = string.format('%.0f', v)
    elseif t == 'table' and v.stored3 then out[i] = cjson.encode(v.stored3)
    elseif t == 'table' then out[i] = listText(v)
    else out[i] = cjson.encode(v) end
  end
  return ascii('[' .. table.concat(out, ',') .. ']')
end
`;
