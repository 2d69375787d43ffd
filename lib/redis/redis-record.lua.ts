import { LUA_ASCII_JSON } from '../internal/ascii-json.js';
import { AT, RECORD_ENCODING, RECORD_LENGTH } from './redis-record.layout.js';
import { V1_FIELDS } from './redis-record.v1.js';

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
 *   `scopes`, written as an array even when empty (`cjson` would write `{}`).
 * The write scripts take the encoding to write: `recordEncoding` 2 rewrites whatever
 * they find in 2; 1 keeps the encoding the record has.
 */
export const LUA_RECORD = `${LUA_ASCII_JSON}
local P = { ${positions(AT, 1)} }
local V1 = { ${positions(Object.fromEntries(V1_FIELDS.map((field, index) => [field, index])), 1)} }
local NULL = cjson.null
local function present(v) return v ~= nil and v ~= NULL end

local function readRecord(raw)
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

local function writeRecord(rec, encoding)
  if encoding == 1 then return writeV1(rec) end
  local out = {}
  -- Past this version's fields too: a newer release may have appended some.
  for i = 1, math.max(${RECORD_LENGTH}, #rec) do
    local v = rec[i]
    local t = type(v)
    if v == nil or v == NULL then out[i] = 'null'
    elseif t == 'number' then out[i] = string.format('%.0f', v)
    elseif t == 'table' then out[i] = listText(v)
    else out[i] = cjson.encode(v) end
  end
  return ascii('[' .. table.concat(out, ',') .. ']')
end
`;
