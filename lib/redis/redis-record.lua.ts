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
 *   reads it);
 * - `writeRecord(rec)`: the array as stored text: encoding 2, ASCII. Numbers are
 *   written with every digit (`cjson.encode` keeps 14, which would move a date past
 *   the year 5138, and every `expiresAt` beyond it); the one table is `scopes`, written
 *   as an array even when empty (`cjson` would write `{}`).
 * So every write script leaves the record it touches in encoding 2, whatever it found.
 */
export const LUA_RECORD = `${LUA_ASCII_JSON}
local P = { ${positions(AT, 1)} }
local V1 = { ${positions(Object.fromEntries(V1_FIELDS.map((field, index) => [field, index])), 1)} }
local NULL = cjson.null
local function present(v) return v ~= nil and v ~= NULL end

local function readRecord(raw)
  local cur = cjson.decode(raw)
  if cur[1] == ${RECORD_ENCODING} then return cur end
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
  return rec
end

local function writeRecord(rec)
  local out = {}
  -- Past this version's fields too: a newer release may have appended some.
  for i = 1, math.max(${RECORD_LENGTH}, #rec) do
    local v = rec[i]
    local t = type(v)
    if v == nil or v == NULL then out[i] = 'null'
    elseif t == 'number' then out[i] = string.format('%.0f', v)
    elseif t == 'table' then
      local items = {}
      for j, item in ipairs(v) do items[j] = cjson.encode(item) end
      out[i] = '[' .. table.concat(items, ',') .. ']'
    else out[i] = cjson.encode(v) end
  end
  return ascii('[' .. table.concat(out, ',') .. ']')
end
`;
